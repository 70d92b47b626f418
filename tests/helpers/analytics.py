"""The analytics tests' world, the same by the API (test_analytics.py) and on the page
(test_admin_analytics_page.py), where its figures are checked in rupees."""

from datetime import UTC, datetime, timedelta

from consult import consultations, feedback
from helpers.inprocess import (
    live_session,
    make_admin,
    make_astrologer,
    make_user,
    services,
    user_obj,
)

DAY1 = datetime(2026, 11, 2, 10, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def analytics_world() -> dict:
    """Three ended sessions over two days with two astrologers, a refund and two ratings;
    returns the people by name, and the operator as "admin"."""
    s = services()
    guru = make_astrologer("guru", rate=6000, name="Guru Dev")
    tara = make_astrologer("tara", rate=3000, name="Tara Moon")
    admin = make_admin("boss")
    asha, ravi, meera = (make_user(name, balance=100_000) for name in ("asha", "ravi", "meera"))

    def ended(user, astrologer, start, seconds, reason=None) -> int:
        """Ended by its user, or for `reason`."""
        session_id = live_session(user, astrologer, started_at=start)
        end = start + timedelta(seconds=seconds)
        if reason:
            consultations.end_session(session_id, reason=reason, at=end, hub=s.hub, policy=s.policy)
        else:
            consultations.end_by_party(
                user_obj(user), session_id, at=end, hub=s.hub, policy=s.policy
            )
        return session_id

    first = ended(asha, guru, DAY1, 100)  # ₹100, commission ₹20
    ended(ravi, tara, DAY1 + timedelta(hours=1), 60)  # ₹30, commission ₹6
    third = ended(meera, guru, DAY2, 50, reason="spend_cap")  # ₹50, commission ₹10
    consultations.refunds.refund(user_obj(admin), first, 4_000, "goodwill", at=DAY2, hub=s.hub)
    feedback.rate(user_obj(asha), first, 5, None, at=DAY2)
    feedback.rate(user_obj(meera), third, 2, None, at=DAY2)
    return {"admin": admin, "guru": guru, "tara": tara, "asha": asha, "ravi": ravi, "meera": meera}
