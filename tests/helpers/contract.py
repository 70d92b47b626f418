"""What API.md promises on the wire, in one place for every suite that checks it: the
field sets, and times in ISO 8601 UTC."""

from datetime import datetime, timedelta

SESSION_FIELDS = {
    "id",
    "userId",
    "astrologerId",
    "astrologerName",
    "status",
    "ratePaisePerMinute",
    "requestedAt",
    "startedAt",
    "endedAt",
    "endReason",
    "durationSeconds",
    "totalCostPaise",
    # API.md "Second wave"
    "maxMinutes",
    "maxSpendPaise",
    "refundedPaise",
}
END_FIELDS = {
    "sessionId",
    "reason",
    "endedAt",
    "durationSeconds",
    "totalCostPaise",
    "balancePaise",
    "alreadyEnded",
}
ENDED_FIELDS = {"sessionId", "reason", "timestamp", "durationSeconds", "totalCostPaise"}
BILLING_FIELDS = {"sessionId", "elapsedSeconds", "costPaise", "balancePaise", "fundedSecondsLeft"}
MESSAGE_FIELDS = {"sessionId", "id", "senderId", "text", "sentAt"}
ASTROLOGER_FIELDS = {
    "id",
    "username",
    "name",
    "ratePaisePerMinute",
    "speciality",
    "online",
    "availability",
    "ratingAverage",
    "ratingCount",
}
RATING_FIELDS = {"sessionId", "stars", "comment", "ratedAt"}
REPORT_FIELDS = {
    "id",
    "sessionId",
    "category",
    "text",
    "status",
    "createdAt",
    "refundPaise",
    "note",
}


def instant(text: str) -> datetime:
    """Parse an API time, which must be ISO 8601 in UTC with an offset."""
    assert text.endswith(("Z", "+00:00")), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def whole_seconds(start: str, stop: str) -> int:
    """The whole seconds between two API times."""
    return (instant(stop) - instant(start)) // timedelta(seconds=1)


# Error bodies API.md names.
AUTH_REQUIRED = {"error": "Authentication required"}
NOT_FOUND = {"error": "Session not found"}
