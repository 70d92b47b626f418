"""Showing money to people: integer paise in, rupee text out (no floats on the way)."""


def rupees(paise: int | None) -> str:
    """Format paise as rupees, e.g. 123456 -> '₹1,234.56'."""
    if paise is None:
        return "—"
    sign = "-" if paise < 0 else ""
    whole, part = divmod(abs(paise), 100)
    return f"{sign}₹{whole:,}.{part:02d}"
