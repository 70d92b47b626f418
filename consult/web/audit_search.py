"""The operator's audit search: events filtered by session, person, astrologer, kind, reason,
request id and time, fifty a page, each money event linked to its ledger transfer; the same
filters as a CSV download; and one transfer's page with its entries.

Admins only (404 for anyone else), like every /admin page. Filters travel in the query
string, so a search is a link an operator can share.
"""

from dataclasses import dataclass

from flask import Blueprint, abort, make_response, render_template, request
from sqlalchemy import select

from .. import audit_search, ledger, people
from ..accounts import User
from ..audit import SessionEvent
from ..clock import iso
from ..db import db
from ..errors import Invalid
from .admin import admins_only
from .common import csv_download, is_fragment_request

bp = Blueprint("audit", __name__, url_prefix="/admin")
bp.before_request(admins_only)

FIELDS = ("session", "user", "astrologer", "kind", "reason", "request", "from", "to")
CSV_COLUMNS = (
    "eventId",
    "at",
    "kind",
    "sessionId",
    "subjectId",
    "actorId",
    "actor",
    "reason",
    "amountPaise",
    "transferId",
    "requestId",
    "detail",
)


@dataclass(frozen=True)
class Row:
    """One event as the table shows it: with its transfer, and the people it names."""

    event: SessionEvent
    transfer_id: int | None
    actor: User | None
    subject: User | None


def filters_from(args) -> audit_search.Filters:
    """The search form's fields as filters; Invalid says which one is wrong."""
    person = _person(args.get("user"), "user")
    astrologer = _person(args.get("astrologer"), "astrologer")
    if astrologer is not None and not astrologer.is_astrologer:
        raise Invalid(f"{astrologer.username} is not an astrologer")
    since = audit_search.parse_instant(args.get("from"))
    until = audit_search.parse_instant(args.get("to"), end=True)
    if since and until and since >= until:
        raise Invalid("From must be before to")
    return audit_search.Filters(
        session_id=audit_search.parse_id(args.get("session"), "The session"),
        person_id=person and person.id,
        astrologer_id=astrologer and astrologer.id,
        kind=_word(args.get("kind"), 24),
        reason=_word(args.get("reason"), 32),
        request_id=_word(args.get("request"), 64),
        since=since,
        until=until,
    )


def _person(text: str | None, what: str) -> User | None:
    text = (text or "").strip()
    if not text:
        return None
    found = people.named(text)
    if found is None:
        raise Invalid(f"No {what} is called {text[:40]!r}")
    return found


def _word(text: str | None, longest: int) -> str | None:
    text = (text or "").strip()
    if len(text) > longest:
        raise Invalid(f"{text[:24]}… is longer than any value stored there ({longest} characters)")
    return text or None


@bp.get("/audit")
def search():
    """The search page; htmx asks for the results alone; `format=csv` downloads them all."""
    typed = {name: request.args.get(name, "")[:100] for name in FIELDS}
    try:
        filters = filters_from(request.args)
        before = audit_search.parse_id(request.args.get("before"), "before")
        after = audit_search.parse_id(request.args.get("after"), "after")
    except Invalid as error:
        if request.args.get("format") == "csv":
            raise
        return _answer(typed, None, error.message, 400)
    if request.args.get("format") == "csv":
        return _csv(filters)
    return _answer(typed, audit_search.page(filters, before=before, after=after), None, 200)


def _answer(typed: dict, page, error: str | None, status: int):
    rows = _rows(page.events) if page else []
    context = {
        "typed": typed,
        "page": page,
        "rows": rows,
        "error": error,
        "kinds": audit_search.KINDS,
        "reasons": audit_search.REASONS,
        "query": {k: v for k, v in typed.items() if v},
    }
    template = "admin/_audit_results.html" if is_fragment_request() else "admin/audit.html"
    return make_response(render_template(template, **context), status)


def _rows(events) -> list[Row]:
    transfers = audit_search.transfers_of(events)
    names = audit_search.names_of(events)
    return [
        Row(e, transfers.get(e.id), names.get(e.actor_id), names.get(e.subject_id)) for e in events
    ]


def _csv(filters: audit_search.Filters):
    return csv_download(CSV_COLUMNS, _csv_lines(filters), "consult-audit.csv")


def _csv_lines(filters: audit_search.Filters):
    """The download's lines, its events looked up a batch at a time (bounded IN lists)."""
    batch = []
    for event in audit_search.every(filters):
        batch.append(event)
        if len(batch) == 500:
            yield from _csv_batch(batch)
            batch = []
    yield from _csv_batch(batch)


def _csv_batch(events):
    for r in _rows(events):
        yield (
            r.event.id,
            iso(r.event.at),
            r.event.kind,
            r.event.consultation_id,
            r.event.subject_id,
            r.event.actor_id,
            r.actor.username if r.actor else "system",
            r.event.reason,
            r.event.cost_paise,
            r.transfer_id,
            r.event.request_id,
            r.event.detail,
        )


@dataclass(frozen=True)
class Line:
    """One entry of a transfer: which account, which way, how much."""

    account: ledger.Account
    owner: User | None
    direction: str
    amount_paise: int


@bp.get("/transfers/<int:transfer_id>")
def transfer(transfer_id):
    """One ledger transfer: its entries, balanced, and the session it belongs to."""
    if transfer_id > audit_search.MAX_ID:
        abort(404)
    found = db.session.get(ledger.Transfer, transfer_id) or abort(404)
    entries = db.session.execute(
        select(ledger.Entry, ledger.Account, User)
        .join(ledger.Account, ledger.Account.id == ledger.Entry.account_id)
        .outerjoin(User, User.id == ledger.Account.owner_id)
        .where(ledger.Entry.transfer_id == transfer_id)
        .order_by(ledger.Entry.id)
    ).all()
    lines = [Line(a, u, e.direction, e.amount_paise) for e, a, u in entries]
    return render_template(
        "admin/transfer.html",
        transfer=found,
        lines=lines,
        session_id=found.consultation_id or found.refund_of_id,
        debited=sum(x.amount_paise for x in lines if x.direction == ledger.DEBIT),
    )
