"""The language a page speaks: English or Hindi, chosen by the person (the header's switch,
kept in a `lang` cookie), else by their browser (`Accept-Language`), else English.

Only pages and the page socket's fragments translate: the JSON API, its error texts and its
socket frames stay English, byte for byte (a contract programs read).
"""

from pathlib import Path

from flask import Blueprint, Flask, redirect, request
from flask_babel import Babel, get_locale

from .auth import safe_next

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = {"en": "English", "hi": "हिन्दी"}  # each named in its own words, for the switch
DEFAULT = "en"
COOKIE = "lang"
COOKIE_AGE = 365 * 24 * 3600

babel = Babel()
bp = Blueprint("language", __name__)


def chosen() -> str:
    """This request's language: the cookie's choice, else the browser's best match."""
    picked = request.cookies.get(COOKIE)
    if picked in LANGUAGES:
        return picked
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT)


def current() -> str:
    """The language the page is being rendered in (`<html lang>`, the switch's state)."""
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT


@bp.post("/language")
def switch():
    """Remember the chosen language and go back where the switch was pressed (a form with
    the CSRF token, like every cookie-authenticated change; it works without JavaScript)."""
    response = redirect(safe_next("/"))
    picked = request.form.get("lang")
    if picked in LANGUAGES:
        response.set_cookie(COOKIE, picked, max_age=COOKIE_AGE, samesite="Lax", httponly=True)
    return response


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(ROOT / "translations"))
    babel.init_app(app, locale_selector=chosen)
    app.jinja_env.globals.update(languages=LANGUAGES, current_language=current)
    app.register_blueprint(bp)
