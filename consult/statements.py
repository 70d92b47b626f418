"""The hot paths' statements: SQLAlchemy Core, compiled once, run on the driver's cursor.

An end, a chat message and a recharge each run a few fixed statements. Through the
session, SQLAlchemy spends ~26 µs of Python on each (re-keying the statement for its
cache, an execution context, a result object); on the driver's cursor a statement costs
~4 µs on this machine. A `Statement` keeps what matters of SQLAlchemy: the statement is
written in Core, compiled by SQLAlchemy for the engine's dialect (SQLite or PostgreSQL),
and its values pass through the column types' own conversions both ways (`UTCDateTime`
included). Only the execution skips the session and the engine: it runs on the session's
connection, inside its transaction (begun as every other statement begins it), or inside
a lean `transaction()` of statements alone, and the engine's `before_cursor_execute`
listeners still hear each one (the statement-count tests listen there).
"""

import contextvars
import weakref
from collections import namedtuple
from contextlib import contextmanager

from sqlalchemy import Insert, Update, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .db import db, wait_durable


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
        place, compiled = self._prepare(params)
        sql_params = compiled.parameters(params)
        fetch = compiled.row_type is not None
        rows, rowcount = _execute(place, compiled.sql, sql_params, fetch=fetch)
        return Result(compiled, rows, rowcount)

    def run_many(self, rows: list[dict]) -> None:
        """Execute once per parameter set, in one call to the driver (`executemany`)."""
        place, compiled = self._prepare(rows[0])
        sql_params = [compiled.parameters(row) for row in rows]
        _execute(place, compiled.sql, sql_params, many=True)

    def _prepare(self, params: dict):
        place = _lean.get()
        if place is None:  # the session's transaction, begun if none is open
            place = _Place.of(db.session.connection())
        key = (place.dialect.name, tuple(params))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.core, place.dialect, tuple(params))
        return place, compiled


class _Place:
    """Where statements run: a DB-API connection, its engine and dialect, the engine's
    listeners, and how to retire the connection should it be found dead."""

    __slots__ = ("dbapi", "engine", "dialect", "connection", "listeners", "invalidate")

    def __init__(self, dbapi, engine, connection, listeners, invalidate):
        self.dbapi, self.engine, self.dialect = dbapi, engine, engine.dialect
        self.connection, self.listeners, self.invalidate = connection, listeners, invalidate

    @classmethod
    def of(cls, connection) -> "_Place":
        """A SQLAlchemy connection's (the session's)."""
        return cls(
            connection.connection.dbapi_connection,
            connection.engine,
            connection,
            connection.dispatch.before_cursor_execute,
            connection.invalidate,
        )


# The lean transaction open in this greenlet (or thread), if any.
_lean: contextvars.ContextVar[_Place | None] = contextvars.ContextVar("lean", default=None)


@contextmanager
def transaction():
    """A write transaction made of `Statement`s alone (a chat message, an end), without the
    session: what `db.write_transaction` promises, for a tenth of the Python.

    The session's unit of work cost ~90 µs a transaction here (a connection object, its
    begin and commit events and state, the release), a third of a chat message's CPU in
    the server. This checks a DB-API connection out of the engine's pool, begins (taking
    SQLite's write lock at once, `BEGIN IMMEDIATE`), runs the block's statements on it,
    commits, or rolls back on any error, and returns once the commit is durable. Nothing in
    the block may use the session: it would run on another connection, outside this
    transaction (and on SQLite wait for the lock this one holds), so it raises instead.
    """
    if _lean.get() is not None:
        raise RuntimeError("lean transactions do not nest")
    if db.session.registry.has():  # end its transaction, so any use of it below begins one
        db.session.rollback()
    engine = db.engine
    kept = _kept.get(engine)
    pooled = kept.take(engine) if kept is not None else engine.raw_connection()
    place = _Place(
        pooled.dbapi_connection,
        engine,
        None,  # no SQLAlchemy connection: listeners hear None
        engine.dispatch.before_cursor_execute,
        pooled.invalidate,
    )
    token = _lean.set(place)
    try:
        if place.dialect.name == "sqlite":  # PostgreSQL's driver begins by itself
            _execute(place, "BEGIN IMMEDIATE", ())
        yield
        try:
            pooled.commit()
        except place.dialect.loaded_dbapi.Error as error:
            raise _translated(place, "COMMIT", (), error) from error
    except BaseException:
        try:
            if pooled.is_valid:  # not already found dead (and invalidated) by the error
                pooled.rollback()
        except place.dialect.loaded_dbapi.Error as error:  # gone: the pool must not reuse it
            pooled.invalidate(error)
        finally:
            pooled.close()  # back to the pool (or, invalidated, closed), whatever happened
            _lean.reset(token)
        raise
    _lean.reset(token)
    if kept is not None:
        kept.put(pooled)
    else:
        pooled.close()
    wait_durable(engine)


class _Kept:
    """SQLite: the connection of the last lean transaction, kept out of the engine's pool
    for the next one.

    A checkout and a check-in cost ~33 µs of the pool's Python (its events, the reset's
    rollback, the queue's locks), 7 % of a chat message. On SQLite a lean transaction never
    waits between its statements (nothing in it yields to another greenlet), so one kept
    connection serves nearly all of them; another one at the same moment (a second thread)
    checks one out of the pool as before. Not on PostgreSQL: there the pool pings a
    connection at checkout, so one the server dropped is replaced before a transaction
    fails on it. Disposing of the engine closes the kept connection, and one in use at
    that moment when it comes back (nothing here forks, so `dispose(close=False)`, which
    fires the same event, is not a case to spare).
    """

    _LENT = "consult_kept_generation"  # in the connection's info: lent before which dispose

    def __init__(self):
        self._idle: list = []  # pop and append are atomic: two threads never share one
        self._generation = 0  # disposals of the engine so far

    def take(self, engine):
        try:
            pooled = self._idle.pop()
        except IndexError:
            pooled = engine.raw_connection()
        pooled.info[self._LENT] = self._generation
        return pooled

    def put(self, pooled) -> None:
        if pooled.info.get(self._LENT) != self._generation:  # its pool was disposed of
            _close_for_good(pooled)
        elif self._idle:  # one is enough: the rest go back to the pool
            pooled.close()
        else:
            self._idle.append(pooled)

    def close(self, _engine=None) -> None:
        """The engine was disposed of: close the kept connection (its pool is gone)."""
        self._generation += 1
        while self._idle:
            _close_for_good(self._idle.pop())


def _close_for_good(pooled) -> None:
    pooled.detach()  # out of the pool: closing it closes the driver's connection
    pooled.close()


_kept: "weakref.WeakKeyDictionary[object, _Kept]" = weakref.WeakKeyDictionary()


def keep_a_connection(engine) -> None:
    """Let lean transactions on this (SQLite) engine keep their connection (`_Kept`)."""
    kept = _kept[engine] = _Kept()
    event.listen(engine, "engine_disposed", kept.close)


def in_lean_transaction() -> bool:
    return _lean.get() is not None


def engine():
    """The engine statements run on: the lean transaction's, else the session's.

    What `db.engine` answers, without its lookup (the app, its extension, its engines by
    bind: ~6 calls) where a lean transaction already knows it.
    """
    place = _lean.get()
    return db.engine if place is None else place.engine


@event.listens_for(Session, "after_begin")
def _no_session_inside_a_lean_transaction(*_args) -> None:
    if in_lean_transaction():
        raise RuntimeError("the session was used inside a lean transaction (statements.py)")


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
        self._positional = compiled.positional
        self._names, self._plan = _parameter_plan(compiled, dialect, names)
        self.row_type = namedtuple("Row", [c.key for c in columns]) if columns else None
        self._results = [
            (i, processor)
            for i, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
        ]

    def parameters(self, params: dict):
        """The driver's parameters: every bind's value, converted by its type."""
        values = [
            constant if key is None else params[key] if convert is None else convert(params[key])
            for key, constant, convert in self._plan
        ]
        return values if self._positional else dict(zip(self._names, values))

    def row(self, raw):
        if self._results:
            raw = list(raw)
            for i, processor in self._results:
                raw[i] = processor(raw[i])
        return self.row_type._make(raw)


class _Given:
    """Stands for a parameter's value while SQLAlchemy says where each one goes."""

    __slots__ = ("key",)

    def __init__(self, key: str):
        self.key = key


def _parameter_plan(compiled, dialect, names: tuple):
    """Where each of the driver's parameters comes from: (key, constant, conversion).

    SQLAlchemy's `construct_params` works this out again on every execution (~8 µs, a
    tenth of an end's Python); with the names fixed it always answers the same, so it is
    asked once, with placeholders: a placeholder back is a parameter to take (`key`) and
    convert, anything else a value the statement carries (`constant`, converted now).
    Returns the bind names in the driver's order, and the plan in that order.
    """
    if any(bind.callable for bind in compiled.bind_names):
        raise ValueError("a bind with a callable value is not a fixed plan")
    placed = compiled.construct_params({name: _Given(name) for name in names})
    converters = {
        compiled.escaped_bind_names.get(name, name): processor
        for bind, name in compiled.bind_names.items()
        if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))
    }
    order = tuple(compiled.positiontup if compiled.positional else placed)
    plan = []
    for name in order:
        value, convert = placed[name], converters.get(name)
        if isinstance(value, _Given):
            plan.append((value.key, None, convert))
        else:
            plan.append((None, value if convert is None else convert(value), None))
    return order, plan


def _refuse_unset_defaults(statement, names: tuple) -> None:
    table = statement.table
    for column in table.columns:
        engine_fills = column.onupdate if isinstance(statement, Update) else column.default
        if engine_fills is not None and column.key not in names:
            raise ValueError(f"{table.name}.{column.key} has a default only the engine applies")


def _execute(place: _Place, sql: str, params, *, fetch: bool = False, many: bool = False):
    """Execute on a cursor of the place's driver connection; return its rows (with `fetch`)
    and its row count.

    The engine's `before_cursor_execute` listeners hear of it first, as of the engine's
    own executions (with no SQLAlchemy connection in a lean transaction). Plain code, not
    context managers: an end runs this ten times, and each `@contextmanager` cost ~6 calls.
    """
    cursor = place.dbapi.cursor()
    try:
        if listeners := place.listeners:
            listeners(place.connection, cursor, sql, params, None, many)
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        return (cursor.fetchall() if fetch else None), cursor.rowcount
    except place.dialect.loaded_dbapi.Error as error:
        raise _translated(place, sql, params, error, cursor, many) from error
    finally:
        cursor.close()


def _translated(place: _Place, sql: str, params, error, cursor=None, many: bool = False):
    """The driver's error as SQLAlchemy's (an `IntegrityError` is an `IntegrityError`
    whichever way the statement ran); a connection found dead is invalidated first, so the
    pool never hands it out again."""
    dialect = place.dialect
    if dialect.is_disconnect(error, place.dbapi, cursor):
        place.invalidate(error)
    return DBAPIError.instance(
        sql, params, error, dialect.loaded_dbapi.Error, dialect=dialect, ismulti=many
    )
