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
