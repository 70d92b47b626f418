"""Showing money to people: integer paise in, rupee text out (no floats on the way), the way
India writes it: lakhs and crores, ₹1,00,000.00 (Babel's `en_IN`)."""

from decimal import Decimal

from babel.numbers import format_currency


def rupees(paise: int | None) -> str:
    """Format paise as rupees, e.g. 12345678 -> '₹1,23,456.78'."""
    if paise is None:
        return "—"
    return format_currency(Decimal(paise).scaleb(-2), "INR", locale="en_IN")
