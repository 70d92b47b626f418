"""What the pages call things, in the viewer's language: a session's status, a wallet
movement, and the domain's refusals.

The domain speaks English (the JSON API gives its texts to programs, unchanged); a page
shows the same refusal translated. A refusal the catalogue does not know is shown as its
status's general sentence rather than in English on a Hindi page.
"""

import re

from flask import Flask
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l

from .. import consultations


def N_(text: str) -> str:
    """Mark a message for the catalogue (`pybabel extract` knows N_), translated where used."""
    return text


def _same(text: str) -> tuple[str, str]:
    """A refusal that a page words as the domain does: the text, and its translation
    (`pybabel extract -k _same` puts it in the catalogue)."""
    return text, _l(text)


STATUS_LABELS = {
    consultations.REQUESTED: _l("Requested"),
    consultations.ACTIVE: _l("Active"),
    consultations.ENDED: _l("Ended"),
    consultations.DECLINED: _l("Declined"),
    consultations.CANCELLED: _l("Cancelled"),
    consultations.EXPIRED: _l("Expired"),
}
REPORT_CATEGORIES = {
    "astrologer_absent": _l("The astrologer was absent or did not answer"),
    "quality": _l("The quality of the consultation"),
    "billing": _l("What I was charged"),
    "abuse": _l("Abusive or inappropriate behaviour"),
    "other": _l("Something else"),
}

# The ledger's memos (consult/wallet.py, consultations/settlement.py and refunds.py), read
# back into their parts; the English words are the memo itself.
MOVEMENTS = (
    (re.compile(r"Recharge via (?P<provider>.+)"), N_("Recharge via %(provider)s")),
    (
        re.compile(r"Consultation #(?P<id>\d+) with (?P<name>.+)"),
        N_("Consultation #%(id)s with %(name)s"),
    ),
    (re.compile(r"Refund for consultation #(?P<id>\d+)"), N_("Refund for consultation #%(id)s")),
)


PROVIDERS = {"Demo payment (no real money)": _l("Demo payment (no real money)")}


def movement(line: dict) -> str:
    """A wallet statement line's memo in the viewer's words."""
    for pattern, words in MOVEMENTS:
        if match := pattern.fullmatch(line["memo"]):
            parts = match.groupdict()
            if "provider" in parts:
                parts["provider"] = PROVIDERS.get(parts["provider"], parts["provider"])
            return gettext(words, **parts)
    return line["memo"]


# Every refusal a page can show, as the domain words it (and the API sends it); one with a
# figure in it matches as a pattern.
REFUSALS = {
    text: words
    for text, words in (
        _same("Not found"),
        ("Method not allowed", _l("That action is not allowed here")),
        ("Request body too large (64 KiB at most)", _l("That was too much to send at once")),
        (consultations.SESSION_NOT_FOUND, _l("Session not found")),
        (consultations.NOT_ACTIVE, _l("Session is not active")),
        (consultations.NOT_WAITING, _l("Session is no longer waiting for an answer")),
        _same("Session has ended"),
        _same("No active session found"),
        _same("No active session found to end"),
        (
            "No active session found to end: this session has already ended",
            _l("This session has already ended"),
        ),
        _same("Astrologer not found"),
        ("Astrologer is not available", _l("This astrologer is not available right now")),
        _same("You already have a requested or active session"),
        ("Insufficient balance", _l("Your balance is too low")),
        _same("That username is taken"),
        _same("That username and password do not match."),
        _same("This account is suspended"),
        _same("Username must be 3 to 32 characters: lowercase letters, digits, '.', '_' or '-'"),
        _same("Password cannot be only spaces"),
        _same("That password is one of the most common; please choose another"),
        _same("Password cannot be a run of neighbouring keys, letters or digits"),
        _same("Password cannot contain the username"),
        ("Message text must be 1 to 2000 characters", _l("A message must be 1 to 2000 characters")),
        (
            "amountPaise must be a positive whole number of paise",
            _l("Choose an amount to add"),
        ),
        _same("Only the session's user can change its limits"),
        _same("The session has ended; its limits can no longer change"),
        _same("The session has already run that long; choose a later time limit"),
        _same("The session has already cost that much; choose a higher spend cap"),
        _same("Only users can request a session"),
        _same("Only the session's user can do this"),
        _same("Only the session's user can report a problem with it"),
        _same("The session has not ended yet"),
        ("stars must be a whole number from 1 to 5", _l("Choose from 1 to 5 stars")),
        _same("Only a session with billed time can be rated"),
        _same("A rating can be changed for 24 hours only"),
        _same("This session has no rating"),
        _same("A problem can be reported within 7 days of the end only"),
        _same("This session already has an open report"),
        _same("This session has no report"),
        _same("The dashboard is for astrologers"),
        _same("Only astrologers set their availability"),
        _same("Only astrologers have earnings"),
        ("status must be one of online, busy, offline", _l("Choose Online, Busy or Offline")),
        ("from and to must be dates like 2026-12-31", _l("Choose the dates from the calendar")),
        ("from must not be after to", _l("The first day must not be after the last")),
        ("by must be day or session", _l("Choose per day or per session")),
        _same("Too many sign-in attempts; try again later"),
        _same("Too many session requests; try again later"),
        _same("Too many messages; slow down a little"),
        _same("Too many reports; try again later"),
        (
            "The form expired or the CSRF token is missing; reload the page and try again",
            _l("The form expired; reload the page and try again"),
        ),
        _same("That did not work. Please try again."),
    )
}
REFUSAL_PATTERNS = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        (
            r"Your balance must cover at least (?P<seconds>\d+) seconds at this rate;"
            r" please recharge",
            N_(
                "Your balance must cover at least %(seconds)s seconds at this rate; please recharge"
            ),
        ),
        (
            r"Password must be (?P<least>\d+) to (?P<most>\d+) characters",
            N_("Password must be %(least)s to %(most)s characters"),
        ),
        (
            r"Password needs at least (?P<least>\d+) different characters",
            N_("Password needs at least %(least)s different characters"),
        ),
        (
            r"The (?P<field>time limit|spend cap) must be .+",
            N_("Enter the limits as whole minutes and an amount in rupees, like 15 and 99.50"),
        ),
        (
            r"(maxMinutes|maxSpendPaise) must be a whole number from 1 to (?P<most>\d+), or null",
            N_("Each limit must be from 1 to %(most)s"),
        ),
        (
            r"maxSessions must be a whole number from 1 to (?P<most>\d+), or null",
            N_("The chat limit must be a whole number from 1 to %(most)s"),
        ),
        (r"The rating must be a whole number", N_("Choose from 1 to 5 stars")),
        (
            r"comment must be text of at most (?P<most>[\d,]+) characters",
            N_("A comment can be at most %(most)s characters"),
        ),
        (
            r"(category must be one of .+|text must be 1 to (?P<most>[\d,]+) characters)",
            N_("Choose what went wrong and tell us about it"),
        ),
        (r"A range covers at most (?P<most>\d+) days", N_("A range covers at most %(most)s days")),
        (
            r"Too many frames: at most (?P<most>\d+) a second",
            N_("Too many messages; slow down a little"),
        ),
    )
)
IN_GENERAL = {
    400: _l("That request was not right. Please check it and try again."),
    401: _l("Please sign in to continue."),
    402: _l("Your balance is too low"),
    403: _l("That is not open to your account."),
    404: _l("Not found"),
    409: _l("That cannot be done now. Reload the page to see the latest."),
    429: _l("Too many tries; wait a little and try again."),
    500: _l("Something went wrong on our side. Please try again."),
}


def refusal(message: str, status: int) -> str:
    """A refusal's message as a page shows it: the same in English, translated otherwise."""
    locale = get_locale()
    if locale is None or locale.language == "en":
        return message
    if message in REFUSALS:
        return str(REFUSALS[message])
    for pattern, words in REFUSAL_PATTERNS:
        if match := pattern.fullmatch(message):
            return gettext(words, **{k: v for k, v in match.groupdict().items() if v})
    return str(IN_GENERAL.get(status) or IN_GENERAL[500 if status >= 500 else 400])


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(
        status_words=STATUS_LABELS, report_categories=REPORT_CATEGORIES, movement_words=movement
    )
