"""Billing policy as pure arithmetic: no app, no database."""

from datetime import UTC, datetime, timedelta

import pytest

from consult import billing
from consult.clock import duration
from consult.money import rupees

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "rate", "cost"),
    [
        (0, 2000, 0),
        (1, 2000, 33),
        (59, 2000, 1966),
        (60, 2000, 2000),
        (61, 3500, 3558),
        (1, 59, 0),
        (3600, 6000, 360000),
    ],
)
def test_cost_is_per_second_rounded_down_to_the_paisa(seconds, rate, cost):
    assert billing.cost_paise(seconds, rate) == cost


def test_billable_seconds_count_whole_seconds_only():
    assert (
        billing.billable_seconds(T0, T0 + timedelta(seconds=61, microseconds=999_999), timedelta())
        == 61
    )


def test_paused_time_is_not_billed():
    stop = T0 + timedelta(seconds=100)
    assert billing.billable_seconds(T0, stop, timedelta(seconds=30, microseconds=500_000)) == 69


def test_billable_seconds_are_never_negative():
    assert billing.billable_seconds(T0, T0 - timedelta(seconds=5), timedelta()) == 0


@pytest.mark.parametrize("balance", [0, 1, 32, 33, 34, 1999, 2000, 50_000, 123_457])
@pytest.mark.parametrize("rate", [1, 7, 59, 60, 2000, 3500, 6001])
def test_the_funded_end_never_costs_more_than_the_balance(balance, rate):
    seconds = billing.funded_seconds(balance, rate)
    assert seconds == balance * 60 // rate  # DESIGN.md's formula for the funded end
    assert billing.cost_paise(seconds, rate) <= balance


def test_funded_until_moves_out_with_pauses_and_balance():
    base = billing.funded_until(T0, timedelta(), 2000, 2000)
    assert base == T0 + timedelta(seconds=60)
    assert billing.funded_until(T0, timedelta(seconds=5), 2000, 2000) == base + timedelta(seconds=5)
    assert billing.funded_until(T0, timedelta(), 4000, 2000) == base + timedelta(seconds=60)


def test_commission_rounds_down_and_the_astrologer_keeps_the_rest():
    assert billing.commission_paise(999, 20) == 199
    assert billing.commission_paise(0, 20) == 0


def test_money_is_shown_in_rupees_without_floats():
    assert rupees(123456) == "₹1,234.56"
    assert rupees(5) == "₹0.05"
    assert rupees(-250) == "-₹2.50"
    # Lakhs and crores, as India writes them (issue 13 part 8).
    assert rupees(10_000_000) == "₹1,00,000.00"
    assert rupees(1_234_567_890) == "₹1,23,45,678.90"
    assert rupees(99_999_999) == "₹9,99,999.99"
    assert duration(3725) == "1:02:05"
    assert duration(65) == "1:05"
