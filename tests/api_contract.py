"""The field sets API.md names, in one place for every suite that checks the wire."""

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
