"""The hot paths' statements: SQLAlchemy Core, compiled once, run on the driver's cursor.

An end, a chat message and a recharge each run a few fixed statements. Through the
session, SQLAlchemy spends ~26 µs of Python on each (re-keying the statement for its
cache, an execution context, a result object); on the driver's cursor a statement costs
~4 µs on this machine. A `Statement` keeps what matters of SQLAlchemy: the statement is
written in Core, compiled by SQLAlchemy for the engine's dialect (SQLite or PostgreSQL),
and its values pass through the column types' own conversions both ways (`UTCDateTime`
included). Only the execution skips the session and the engine: it runs on the session's
connection, inside its transaction (begun as every other statement begins it), and the
engine's `before_cursor_execute` listeners still hear each one (the statement-count tests
listen there).
"""

from collections import namedtuple
from contextlib import contextmanager

from sqlalchemy import Insert, Update
from sqlalchemy.exc import DBAPIError

from .db import db


class Statement:
    """A Core statement run with parameters in the session's current transaction.

    An INSERT or UPDATE sets exactly the columns its parameters name, as the session
    would; one with a column that has a Python-side default or `onupdate` not among them
    is refused when it is compiled, since only the engine would fill that in.
    """

    def __init__(self, statement):
        self.core = statement  # the Core statement itself, as written
        self._compiled = {}  # (dialect name, parameter names) -> _Compiled

    def run(self, params: dict) -> "Result":
        """Execute once and return its rows (if it has any) and row count."""
        connection, compiled = self._prepare(params)
        sql_params = compiled.parameters(params)
        with _cursor(connection, compiled.sql, sql_params, many=False) as cursor:
            cursor.execute(compiled.sql, sql_params)
            rows = cursor.fetchall() if compiled.row_type is not None else None
            return Result(compiled, rows, cursor.rowcount)

    def run_many(self, rows: list[dict]) -> None:
        """Execute once per parameter set, in one call to the driver (`executemany`)."""
        connection, compiled = self._prepare(rows[0])
        sql_params = [compiled.parameters(row) for row in rows]
        with _cursor(connection, compiled.sql, sql_params, many=True) as cursor:
            cursor.executemany(compiled.sql, sql_params)

    def _prepare(self, params: dict):
        connection = db.session.connection()  # begins the transaction if none is open
        dialect = connection.dialect
        key = (dialect.name, tuple(params))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.core, dialect, tuple(params))
        return connection, compiled


class Result:
    """What a `Statement` returned: its rows as named tuples, converted by their types."""

    def __init__(self, compiled: "_Compiled", rows, rowcount: int):
        self._compiled = compiled
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list:
        return [self._compiled.row(raw) for raw in self._rows]

    def one_or_none(self):
        if len(self._rows) > 1:
            raise ValueError("more than one row where at most one was expected")
        return self._compiled.row(self._rows[0]) if self._rows else None

    def one(self):
        row = self.one_or_none()
        if row is None:
            raise ValueError("no row where one was expected")
        return row

    def scalar(self):
        """The first column of the first row, or None without a row."""
        return self._compiled.row(self._rows[0])[0] if self._rows else None

    def scalar_one(self):
        return self.one()[0]


class _Compiled:
    """A statement compiled for one dialect and one set of parameter names."""

    def __init__(self, statement, dialect, names: tuple):
        columns = list(statement.exported_columns)  # a DML statement's: what it RETURNs
        if isinstance(statement, Insert | Update):
            _refuse_unset_defaults(statement, names)
        if isinstance(statement, Insert) and not columns:
            statement = statement.inline()  # no implicit RETURNING of the new id
        compiled = statement.compile(dialect=dialect, column_keys=list(names))
        self.sql = compiled.string
        self._construct = compiled.construct_params
        self._order = compiled.positiontup if compiled.positional else None
        self._binds = [
            (name, processor)
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))
        ]
        self.row_type = namedtuple("Row", [c.key for c in columns]) if columns else None
        self._results = [
            (i, processor)
            for i, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
        ]

    def parameters(self, params: dict):
        """The driver's parameters: every bind's value, converted by its type."""
        values = self._construct(params)
        for name, processor in self._binds:
            values[name] = processor(values[name])
        return values if self._order is None else [values[name] for name in self._order]

    def row(self, raw):
        if self._results:
            raw = list(raw)
            for i, processor in self._results:
                raw[i] = processor(raw[i])
        return self.row_type._make(raw)


def _refuse_unset_defaults(statement, names: tuple) -> None:
    table = statement.table
    for column in table.columns:
        engine_fills = column.onupdate if isinstance(statement, Update) else column.default
        if engine_fills is not None and column.key not in names:
            raise ValueError(f"{table.name}.{column.key} has a default only the engine applies")


@contextmanager
def _cursor(connection, sql: str, params, *, many: bool):
    """A cursor of the connection's driver, for one execution.

    The engine's `before_cursor_execute` listeners hear of it first, as of the engine's
    own executions. The driver's errors come out as SQLAlchemy's (an `IntegrityError` is
    an `IntegrityError` whichever way the statement ran), and a connection found dead is
    invalidated, so the pool never hands it out again.
    """
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        if listeners := connection.dispatch.before_cursor_execute:
            listeners(connection, cursor, sql, params, None, many)
        yield cursor
    except connection.dialect.loaded_dbapi.Error as error:
        dialect = connection.dialect
        if dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor):
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql, params, error, dialect.loaded_dbapi.Error, dialect=dialect, ismulti=many
        ) from error
    finally:
        cursor.close()
