"""GET /api/sessions/<id>/summary: the receipt a program can show (an addition)."""

from datetime import timedelta

from consult import accounts, chat, consultations, wallet
from consult.clock import utcnow
from helpers import PASSWORD
from helpers.inprocess import be_present


def token(client, username):
    r = client.post("/api/auth/token", json={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.get_json()['token']}"}


def test_summary_names_who_ended_it_the_balance_after_and_the_transcript(app, client):
    services = app.extensions["consult"]
    now = utcnow()
    user = accounts.create_user("suma", PASSWORD, role="user", now=now)
    astrologer = accounts.create_user(
        "sumastro", PASSWORD, role="astrologer", now=now, rate_paise_per_minute=3000
    )
    wallet.recharge(user.id, 10_000, at=now, provider=services.payments, hub=services.hub)
    c = consultations.request_consultation(
        user, astrologer.id, at=now, hub=services.hub, policy=services.policy
    )
    be_present(user.id, astrologer.id, hub=services.hub)
    consultations.accept(astrologer, c.id, at=now, hub=services.hub)
    chat.post_message(user, c.id, "Hello <there>", at=now, hub=services.hub)
    consultations.end_by_party(
        user, c.id, at=now + timedelta(seconds=90), hub=services.hub, policy=services.policy
    )

    body = client.get(f"/api/sessions/{c.id}/summary", headers=token(client, "suma")).get_json()
    assert body["endedBy"] == {"id": user.id, "role": "user"}
    assert (body["durationSeconds"], body["totalCostPaise"]) == (90, 4500)
    assert body["balanceAfterPaise"] == 5500
    assert [m["text"] for m in body["messages"]] == ["Hello <there>"]

    as_astrologer = client.get(
        f"/api/sessions/{c.id}/summary", headers=token(client, "sumastro")
    ).get_json()
    assert as_astrologer["balanceAfterPaise"] is None

    accounts.create_user("nosy", PASSWORD, role="user", now=now)
    r = client.get(f"/api/sessions/{c.id}/summary", headers=token(client, "nosy"))
    assert (r.status_code, r.get_json()) == (404, {"error": "Session not found"})
