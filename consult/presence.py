"""Presence turned into billing: a party's last connection going pauses their sessions."""

from datetime import datetime

from flask import Flask

from . import consultations
from .accounts import User
from .db import db
from .realtime import Event


def listener(app: Flask):
    """Build the hub's presence callback for this app."""

    def on_presence(user_id: int, online: bool, at: datetime) -> None:
        with app.app_context():
            hub = app.extensions["consult"].hub
            if online:
                consultations.party_returned(user_id, at=at, hub=hub)
            else:
                consultations.party_left(user_id, at=at, hub=hub)
            person = db.session.get(User, user_id)
            if person is not None and person.is_astrologer:  # only astrologers are listed
                event = Event("presence:changed", {"userId": user_id, "online": online})
                hub.broadcast(event, topic="presence")
            db.session.remove()

    return on_presence
