"""Demo accounts for trying Consult locally: two users, three astrologers, one admin."""

from flask import Flask
from sqlalchemy import select

from . import accounts, wallet
from .accounts import User
from .clock import utcnow
from .db import db
from .money import rupees
from .services import services_of

PASSWORD = "consult-demo"
USERS = [("asha", "Asha Verma", 50_000), ("rohan", "Rohan Iyer", 3_000)]
ASTROLOGERS = [
    ("pandit.sharma", "Pandit R. Sharma", 2_000, "Vedic astrology · career"),
    ("tara.moon", "Tara Moonstone", 3_500, "Tarot · relationships"),
    ("acharya.dev", "Acharya Dev", 6_000, "Kundli matching · numerology"),
]
ADMIN = ("admin", "Consult Admin")


def seed(app: Flask) -> list[str]:
    """Create whatever demo account is missing; return the lines to print."""
    services = services_of(app)
    with app.app_context():
        now = utcnow()

        def missing(username):
            return db.session.scalar(select(User).where(User.username == username)) is None

        for username, name, balance in USERS:
            if missing(username):
                user = accounts.create_user(
                    username, PASSWORD, role="user", now=now, display_name=name
                )
                wallet.recharge(
                    user.id, balance, at=now, provider=services.payments, hub=services.hub
                )
        for username, name, rate, speciality in ASTROLOGERS:
            if missing(username):
                accounts.create_user(
                    username,
                    PASSWORD,
                    role="astrologer",
                    now=now,
                    display_name=name,
                    rate_paise_per_minute=rate,
                    speciality=speciality,
                )
        if missing(ADMIN[0]):
            accounts.create_user(ADMIN[0], PASSWORD, role="admin", now=now, display_name=ADMIN[1])
    lines = [f"Demo logins (password for all: {PASSWORD})"]
    lines += [f"  user        {u:<14} wallet {rupees(b)}" for u, _, b in USERS]
    lines += [f"  astrologer  {u:<14} {rupees(r)}/min" for u, _, r, _ in ASTROLOGERS]
    lines.append(f"  admin       {ADMIN[0]}")
    return lines
