"""Times as the viewer reads them: in their browser's time zone (the `tz` cookie static/app.js
sets), and in India's until the browser has said. The API, the database and the audit
search stay in UTC."""

from datetime import datetime
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from flask import Flask, g, has_request_context, request
from flask_babel import get_locale

DEFAULT_ZONE = "Asia/Kolkata"


def viewer_zone() -> ZoneInfo:
    """The zone of the browser behind this request (its `tz` cookie), else India's."""
    if not has_request_context():
        return ZoneInfo(DEFAULT_ZONE)
    if "viewer_zone" not in g:
        try:
            g.viewer_zone = ZoneInfo(unquote(request.cookies.get("tz", "")) or DEFAULT_ZONE)
        except (ZoneInfoNotFoundError, ValueError):  # unknown, or not a zone name at all
            g.viewer_zone = ZoneInfo(DEFAULT_ZONE)
    return g.viewer_zone


def local(moment: datetime | None, fmt: str) -> str:
    """`moment` (aware, UTC) in the viewer's zone; `%Z` in `fmt` names the zone (IST)."""
    if moment is None:
        return "—"
    shown = moment.astimezone(viewer_zone())
    if "%b" in fmt:  # strftime knows only English month names: the page's language has its own
        fmt = fmt.replace("%b", month_name(shown.month))
    return shown.strftime(fmt)


def month_name(month: int) -> str:
    """The month's short name in the page's language ("Dec", "दिस॰")."""
    locale = get_locale() or Locale("en")
    return locale.months["format"]["abbreviated"][month]


def init_app(app: Flask) -> None:
    app.jinja_env.filters["local"] = local
