"""Time: the one source of 'now' for code that is not handed one, and time as text."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """Format an instant as ISO 8601 with a `Z`, as the API promises; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def duration(seconds: int | None) -> str:
    """Format seconds as m:ss or h:mm:ss."""
    if seconds is None:
        return "—"
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
