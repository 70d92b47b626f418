"""The one source of 'now' for code that is not handed a time."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """Format an instant as ISO 8601 with a `Z`, as API.md asks; None stays None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
