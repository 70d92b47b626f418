"""Configuration: defaults, then instance/config.py, then the environment (tests: their own)."""

import os
import secrets
from pathlib import Path

DEFAULTS = {
    "DATABASE_URL": None,  # None: SQLite in the instance folder
    "REDIS_URL": None,  # None: the in-memory hub (one process)
    "REDIS_PREFIX": "consult",  # keys and channel names, so deployments can share a Redis
    "SQLITE_GROUP_COMMIT": True,  # concurrent commits share one fsync (group_commit.py)
    "DISCONNECT_GRACE_SECONDS": 30,
    "REQUEST_TIMEOUT_SECONDS": 120,
    "LOW_BALANCE_WARNING_SECONDS": 60,
    "MAKE_GOOD_SECONDS": 60,
    "MAKE_GOOD_SILENT_ASTROLOGER": True,
    "MIN_SESSION_SECONDS": 60,
    "PLATFORM_COMMISSION_PERCENT": 20,
    "TOKEN_TTL_SECONDS": 30 * 24 * 3600,
    "SCHEDULER_INTERVAL_SECONDS": 0.5,
    "LOGIN_ATTEMPTS_PER_WINDOW": 10,  # failed sign-ins per address and username
    "LOGIN_WINDOW_SECONDS": 300,
    # Rate limits (web/rate_limits.py), in Flask-Limiter's notation.
    "SIGNUP_LIMIT": "20 per hour",  # per address
    "RECHARGE_LIMIT": "60 per hour",  # per address
    "SESSION_REQUEST_LIMIT": "30 per 10 minutes",  # per account
    "MESSAGE_LIMIT": "120 per minute",  # per account, REST and socket together
    "REPORT_LIMIT": "10 per hour",  # per account
    "SOCKET_FRAMES_PER_SECOND": 20,  # per socket; ending a session is never refused
    "SOCKETS_PER_USER": 20,  # open sockets per account and instance
    "ALLOWED_ORIGINS": "",  # comma-separated origins besides the app's own
    "TRUSTED_HOSTS": None,  # Host headers answered (a list); None answers any (development)
    "METRICS_TOKEN": None,  # /metrics asks for this bearer token; with neither setting: 404
    "METRICS_ALLOWED_ADDRESSES": "",  # comma-separated IPs or networks /metrics answers
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # A socket unanswered for this long (one ping) is hung up, and its party is away.
    "SOCKET_PING_SECONDS": 25.0,
    "SOCK_SERVER_OPTIONS": {"max_message_size": 64 * 1024},  # pings: web/keepalive.py
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
}


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes")


# Settings read from the environment under their plain names (README "Configuration").
ENVIRONMENT = {
    "DATABASE_URL": str,
    "REDIS_URL": str,
    "REDIS_PREFIX": str,
    "SECRET_KEY": str,
    "DISCONNECT_GRACE_SECONDS": float,
    "REQUEST_TIMEOUT_SECONDS": float,
    "LOW_BALANCE_WARNING_SECONDS": float,
    "MAKE_GOOD_SECONDS": float,
    "MAKE_GOOD_SILENT_ASTROLOGER": str,
    "MIN_SESSION_SECONDS": int,
    "PLATFORM_COMMISSION_PERCENT": int,
    "TOKEN_TTL_SECONDS": int,
    "SCHEDULER_INTERVAL_SECONDS": float,
    "ALLOWED_ORIGINS": str,
    "LOGIN_ATTEMPTS_PER_WINDOW": int,
    "LOGIN_WINDOW_SECONDS": int,
    "SIGNUP_LIMIT": str,
    "RECHARGE_LIMIT": str,
    "SESSION_REQUEST_LIMIT": str,
    "MESSAGE_LIMIT": str,
    "REPORT_LIMIT": str,
    "SOCKET_FRAMES_PER_SECOND": int,
    "SOCKETS_PER_USER": int,
    "SOCKET_PING_SECONDS": float,
    "RATELIMIT_STORAGE_URI": str,
    "TRUSTED_HOSTS": lambda v: [h.strip() for h in v.split(",") if h.strip()],
    "METRICS_TOKEN": str,
    "METRICS_ALLOWED_ADDRESSES": str,
    "SESSION_COOKIE_SECURE": _flag,
    "SQLITE_GROUP_COMMIT": _flag,
}


def load(app, test_config: dict | None) -> None:
    """Deployments read instance/config.py and the environment; a test app (one given
    `test_config`) is built from the defaults and that alone, whatever the shell holds."""
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        for name, kind in ENVIRONMENT.items():
            if os.environ.get(name):
                app.config[name] = kind(os.environ[name])
        app.config.from_prefixed_env()
    else:
        app.config.from_mapping(test_config)
        app.config.setdefault("SECRET_KEY", secrets.token_hex(32))
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'consult.db'}"
    app.config["DATABASE_URL"] = _with_driver(app.config["DATABASE_URL"])
    app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(instance)


def _with_driver(url: str) -> str:
    """`postgresql://…` (as most hosts hand it out) means psycopg 3 here."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _instance_secret(instance: Path) -> str:
    """A random key kept in instance/, so logins survive restarts without a hard-coded secret."""
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
