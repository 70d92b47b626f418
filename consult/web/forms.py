"""Reading HTML form fields: people type rupees and minutes; the domain takes paise and ints."""

from decimal import Decimal, InvalidOperation

from ..errors import Invalid


def paise_from_rupees(text: str | None, field: str) -> int | None:
    """'12.50' -> 1250 exactly (no floats); empty -> None; more than two decimals -> Invalid."""
    text = (text or "").strip().replace(",", "")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise Invalid(f"{field} must be an amount in rupees, like 150 or 99.50") from None
    paise = amount * 100
    if not amount.is_finite() or paise != paise.to_integral_value() or abs(paise) > 10**12:
        raise Invalid(f"{field} must be an amount in rupees, with at most two decimals")
    return int(paise)


def whole_number(text: str | None, field: str) -> int | None:
    """'15' -> 15; empty -> None; anything else -> Invalid."""
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise Invalid(f"{field} must be a whole number")
    return int(text)


def limits(form) -> dict:
    """The limits fields of a form, as the JSON API's names (`limits.parse` checks them)."""
    return {
        "maxMinutes": whole_number(form.get("max_minutes"), "The time limit"),
        "maxSpendPaise": paise_from_rupees(form.get("max_spend_rupees"), "The spend cap"),
    }
