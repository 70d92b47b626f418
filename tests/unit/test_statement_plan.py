"""A `Statement` works out once where each of the driver's parameters comes from; what it
hands the driver must be what SQLAlchemy's own `construct_params` and the column types'
conversions give, on every execution, for SQLite and PostgreSQL alike."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import Integer, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite

from consult import audit, ledger
from consult.consultations.settlement import _COMPARE_AND_SET
from consult.statements import Statement, _Compiled

AT = datetime(2026, 12, 5, 9, 5, 3, 1, tzinfo=UTC)
DIALECTS = [sqlite.dialect(), postgresql.psycopg.dialect()]

CASES = {
    # A constant in its WHERE (status = 'active') and instants set to a value and to NULL.
    "compare-and-set": (
        _COMPARE_AND_SET,
        {"row_id": 7, "status": "ended", "ended_at": AT, "ends_at": None, "billed_seconds": 30},
    ),
    # `:delta` twice in the statement, a constant kind and a constant zero.
    "move wallet": (ledger._MOVE_WALLET, {"wallet": 3, "delta": -1500}),
    "audit insert": (
        audit._INSERT,
        {"consultation_id": 7, "subject_id": None, "kind": "ended", "at": AT, "detail": "₹"},
    ),
    # A constant instant is converted by its column's type too (once, when compiled).
    "constant instant": (
        Statement(
            select(audit.SessionEvent.id).where(
                audit.SessionEvent.at < AT, audit.SessionEvent.kind == bindparam("kind")
            )
        ),
        {"kind": "ended"},
    ),
    # A value bound in a text clause travels with the statement, not the parameters.
    "text bind": (
        Statement(
            select(text("1")).where(
                text("1 = :one").bindparams(one=1), bindparam("two", type_=Integer) > 0
            )
        ),
        {"two": 2},
    ),
}


def _sqlalchemys(statement, dialect, params: dict):
    compiled = statement.core.compile(dialect=dialect, column_keys=list(params))
    values = compiled.construct_params(params)
    for bind, name in compiled.bind_names.items():
        if convert := bind.type.dialect_impl(dialect).bind_processor(dialect):
            values[name] = convert(values[name])
    return [values[name] for name in compiled.positiontup] if compiled.positional else values


def _another(value):
    if isinstance(value, int | str):
        return value + (1 if isinstance(value, int) else "-2")
    return value


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@pytest.mark.parametrize("case", CASES)
def test_the_plan_gives_what_sqlalchemy_gives(case, dialect):
    statement, params = CASES[case]
    compiled = _Compiled(statement.core, dialect, tuple(params))
    assert compiled.parameters(params) == _sqlalchemys(statement, dialect, params)
    # Another execution with other values takes them, not the first one's.
    other = {k: _another(v) for k, v in params.items()}
    assert compiled.parameters(other) == _sqlalchemys(statement, dialect, other)
    assert compiled.parameters(other) != compiled.parameters(params)


def test_a_missing_required_value_is_refused_when_compiled():
    with pytest.raises(Exception, match="A value is required for bind parameter 'row_id'"):
        _Compiled(_COMPARE_AND_SET.core, DIALECTS[0], ("status",))
