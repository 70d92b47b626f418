"""Showing money to people: integer paise in, rupee text out (no floats on the way)."""


def rupees(paise: int | None) -> str:
    """Format paise as rupees, e.g. 123456 -> '₹1,234.56'."""
    if paise is None:
        return "—"
    sign = "-" if paise < 0 else ""
    whole, part = divmod(abs(paise), 100)
    return f"{sign}₹{whole:,}.{part:02d}"


def duration(seconds: int | None) -> str:
    """Format seconds as m:ss or h:mm:ss."""
    if seconds is None:
        return "—"
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
