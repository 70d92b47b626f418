"""UTCDateTime's one-step conversion for SQLite writes exactly what SQLAlchemy's two would."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator

from consult.db import UTCDateTime

INDIA = timezone(timedelta(hours=5, minutes=30))
INSTANTS = [
    datetime(2026, 12, 5, 3, 35, 3, 132710, tzinfo=UTC),
    datetime(2026, 12, 5, 3, 35, 3, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 12, 5, 9, 5, 3, 1, tzinfo=INDIA),  # another offset: stored as UTC
    datetime(2027, 1, 1, 0, 0, 0, tzinfo=INDIA),  # the day and the year change back
    datetime(1, 1, 1, 0, 0, 0, tzinfo=UTC),
    datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC),  # a year of three digits, zero-padded
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    None,
]


def _both(dialect):
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    composed = TypeDecorator.bind_processor(UTCDateTime().dialect_impl(dialect), dialect)
    return ours, composed


@pytest.mark.parametrize("instant", INSTANTS, ids=str)
def test_sqlite_text_is_what_sqlalchemy_would_store(instant):
    ours, composed = _both(sqlite.dialect())
    assert ours is not composed
    assert ours(instant) == composed(instant)


def test_a_naive_instant_is_refused_either_way():
    naive = datetime(2026, 12, 5, 3, 35, 3)
    for convert in _both(sqlite.dialect()):
        with pytest.raises(ValueError, match="naive"):
            convert(naive)


def test_other_databases_keep_sqlalchemys_conversion():
    dialect = postgresql.psycopg.dialect()
    ours, composed = _both(dialect)
    instant = INSTANTS[2]
    assert ours(instant) == composed(instant) == datetime(2026, 12, 5, 3, 35, 3, 1)
