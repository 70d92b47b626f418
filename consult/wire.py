"""The JSON shapes of the contract (consult/openapi.json, docs/websocket.md): REST answers
and socket event payloads.

The models know nothing of JSON; the web layer answers with these, and the domain builds
its events' payloads with them, because an event crosses instances (Redis) as JSON.
"""

from .clock import iso


def _fields(obj, *names: str) -> dict:
    """`obj`'s attributes `names`, in order, each under its camelCase name; a time (a name
    ending in `_at`) in ISO form."""
    return {_camel(name): _value(obj, name) for name in names}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _value(obj, name: str):
    value = getattr(obj, name)
    return iso(value) if name.endswith("_at") else value


def session(c) -> dict:
    """The Session object."""
    return {
        "id": c.id,
        "userId": c.user_id,
        "astrologerId": c.astrologer_id,
        "astrologerName": c.astrologer.display_name,
        "status": c.status,
        "ratePaisePerMinute": c.rate_paise_per_minute,
        "requestedAt": iso(c.requested_at),
        "startedAt": iso(c.started_at),
        "endedAt": iso(c.ended_at),
        "endReason": c.end_reason,
        "durationSeconds": c.billed_seconds,
        "totalCostPaise": c.total_cost_paise,
        "maxMinutes": c.max_minutes,
        "maxSpendPaise": c.max_spend_paise,
        "refundedPaise": c.refunded_paise or 0,
    }


def bill(meter, *, viewer_id: int) -> dict:
    """The live bill (`billing/status`, `billing:status`); only the paying user sees the balance."""
    return {
        "sessionId": meter.session_id,
        "elapsedSeconds": meter.elapsed_seconds,
        "costPaise": meter.cost_paise,
        "balancePaise": meter.balance_paise if viewer_id == meter.user_id else None,
        "fundedSecondsLeft": meter.funded_seconds_left,
        "paused": meter.paused,
        "ratePaisePerMinute": meter.rate_paise_per_minute,
        "endsBy": meter.ends_by,
        "secondsLeft": meter.seconds_left,
    }


def end_answer(outcome, *, viewer_id: int) -> dict:
    """The answer to an end (`POST /api/sessions/end`, `endSession:result`)."""
    c = outcome.consultation
    return {
        "sessionId": c.id,
        "reason": c.end_reason,
        "endedAt": iso(c.ended_at),
        "durationSeconds": c.billed_seconds,
        "totalCostPaise": c.total_cost_paise,
        "balancePaise": c.balance_after_paise if outcome.sees_balance(viewer_id) else None,
        "alreadyEnded": outcome.already_ended,
    }


def ended_event(ended) -> dict:
    """`consult:ended`, heard by both parties."""
    return {
        "sessionId": ended.id,
        "reason": ended.end_reason,
        "timestamp": iso(ended.ended_at),
        "durationSeconds": ended.billed_seconds,
        "totalCostPaise": ended.total_cost_paise,
    }


def message(m) -> dict:
    """A chat message."""
    return {"id": m.id, "senderId": m.sender_id, "text": m.text, "sentAt": iso(m.sent_at)}


def account(user) -> dict:
    """Who is signed in (`GET /api/me`)."""
    return {"id": user.id, "username": user.username, "role": user.role}


def astrologer(a, *, online: bool, availability: str, rating: tuple | None) -> dict:
    """An entry of `GET /api/astrologers`."""
    average, count = rating or (None, 0)
    return {
        "id": a.id,
        "username": a.username,
        "name": a.display_name,
        "ratePaisePerMinute": a.rate_paise_per_minute,
        "speciality": a.speciality,
        "online": online,
        "availability": availability,
        "ratingAverage": average,
        "ratingCount": count,
    }


def availability(a) -> dict:
    """An astrologer's own setting (`PUT /api/me/availability`)."""
    return {"status": a.availability, "maxSessions": a.max_sessions}


def rating(r) -> dict:
    return {"sessionId": r.consultation_id, **_fields(r, "stars", "comment", "rated_at")}


def report(r) -> dict:
    return {
        "id": r.id,
        "sessionId": r.consultation_id,
        **_fields(
            r, "category", "text", "status", "created_at", "refund_paise", "note", "resolved_at"
        ),
    }


def digest(d) -> dict:
    """The automatic summary of a session's chat."""
    return {
        **_fields(
            d,
            "user_messages",
            "user_words",
            "astrologer_messages",
            "astrologer_words",
            "first_question",
            "last_answer",
        ),
        "topWords": [{"word": w, "count": n} for w, n in d.top_words],
        "billedSeconds": d.billed_seconds,
    }


def analytics_row(r) -> dict:
    """A line of `GET /api/admin/analytics` (`averageSeconds`, `astrologerId` are additions)."""
    line = {
        "key": r.key,
        "sessions": r.sessions,
        "billedSeconds": r.billed_seconds,
        "averageSeconds": r.average_seconds,
        "grossPaise": r.gross_paise,
        "commissionPaise": r.commission_paise,
        "refundedPaise": r.refunded_paise,
        "endReasons": dict(sorted(r.end_reasons.items())),
        "ratingAverage": r.rating_average,
    }
    if r.astrologer_id is not None:
        line["astrologerId"] = r.astrologer_id
    return line


EARNING_FIELDS = (
    "key",
    "sessions",
    "grossPaise",
    "commissionPaise",
    "refundedPaise",
    "netPaise",
)


def earning(e) -> dict:
    """A line of an astrologer's statement (`GET /api/me/earnings`, an addition)."""
    values = (
        e.key,
        e.sessions,
        e.gross_paise,
        e.commission_paise,
        e.refunded_paise,
        e.net_paise,
    )
    return dict(zip(EARNING_FIELDS, values, strict=True))
