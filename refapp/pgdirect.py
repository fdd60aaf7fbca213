"""Running one SQL statement on Django's PostgreSQL connection through libpq directly.

A helper of the ground floor: it knows psycopg and Django's connection wrapper, nothing of the
apps. `commissions.ingest_pg` runs the conversion's two statements with it.

psycopg's cursor spends about 30 µs of Python per statement around the libpq call (a cursor and
its adapters per execute, the prepare manager, the wait loop): in a one-thread loop the web
process's CPU per conversion was 0.96 of the database backend's with it, 0.82 without. Here a
statement is prepared once per connection under a name of its own (DB_PREPARED_STATEMENTS:
planning was most of a read's time, 0.8 ms to 0.2 ms measured), its parameters are dumped as text
by psycopg's own dumpers, and libpq's blocking call waits with Python's lock released, as
psycopg's does. The row is loaded by psycopg's loaders registered on the connection (Django's
time-zone aware timestamps included). Errors are psycopg's classes, which `wrap_database_errors`
turns into Django's, as for any query.
"""

from __future__ import annotations

import itertools
from weakref import WeakKeyDictionary

import psycopg
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import errors, pq
from psycopg.adapt import PyFormat, Transformer


def numbered(sql: str, names: tuple[str, ...]) -> str:
    """The statement with each %(name)s parameter written as PostgreSQL's own $n, in the order of
    `names`, as libpq takes it."""
    for n, name in enumerate(names, start=1):
        sql = sql.replace(f"%({name})s", f"${n}")
    if "%(" in sql:
        raise ValueError(f"the statement names a parameter that `names` lacks: {sql}")
    return sql


class _Session:
    """What `run` keeps per database connection: a Transformer (psycopg's adapter of parameters
    and results, with the dumpers and loaders it has looked up) and the statements prepared on it."""

    __slots__ = ("transformer", "prepared")

    def __init__(self, conn: psycopg.Connection):
        self.transformer = Transformer(conn)
        self.prepared: set[bytes] = set()


_sessions: WeakKeyDictionary[psycopg.Connection, _Session] = WeakKeyDictionary()
# Statement text -> the name it is prepared under, the same on every connection of the process.
_names: dict[str, bytes] = {}
_numbers = itertools.count()
_TEXT = PyFormat.TEXT
# Raised by the server when a prepared statement is gone (a pooler's DISCARD ALL, a DEALLOCATE).
_NO_SUCH_STATEMENT = b"26000"


def run(db: BaseDatabaseWrapper, sql: str, params: list) -> tuple | None:
    """Run one statement ($n placeholders) on Django's connection and return its first row."""
    db.ensure_connection()
    conn = db.connection
    with db.wrap_database_errors:
        pgconn = conn.pgconn
        if not conn.autocommit and pgconn.transaction_status == pq.TransactionStatus.IDLE:
            # Django asked for a transaction that is not open yet: psycopg opens it (BEGIN with
            # the connection's isolation level) as it runs the statement. Unprepared: psycopg
            # sends DEALLOCATE ALL after a rollback whenever it holds prepared statements of its
            # own, which would take this function's statements with them.
            with psycopg.RawCursor(conn) as cursor:
                cursor.execute(sql, params, prepare=False)
                return cursor.fetchone()
        session = _sessions.get(conn)
        if session is None:
            session = _sessions[conn] = _Session(conn)
        tx = session.transformer
        values = tx.dump_sequence(params, [_TEXT] * len(params))
        if conn.prepare_threshold is None:
            result = _checked(pgconn, pgconn.exec_params(sql.encode(), values))
        else:
            name = _names.get(sql)
            if name is None:
                name = _names.setdefault(sql, b"refapp_%d" % next(_numbers))
            result = _run_prepared(pgconn, session.prepared, name, sql, values)
        if not result.ntuples:
            return None
        tx.set_pgresult(result)
        try:
            return tx.load_row(0, tuple)
        finally:
            tx.set_pgresult(None)


def _run_prepared(pgconn, prepared: set[bytes], name: bytes, sql: str, values):
    if name not in prepared:
        _checked(pgconn, pgconn.prepare(name, sql.encode()))
        prepared.add(name)
    result = pgconn.exec_prepared(name, values)
    if (
        result.status == pq.ExecStatus.FATAL_ERROR
        and result.error_field(pq.DiagnosticField.SQLSTATE) == _NO_SUCH_STATEMENT
    ):
        # The server forgot its prepared statements: prepare each again on first use. Outside a
        # transaction nothing else was lost, so this one runs again at once; inside one, the error
        # aborted the transaction and is raised.
        prepared.clear()
        if pgconn.transaction_status == pq.TransactionStatus.IDLE:
            _checked(pgconn, pgconn.prepare(name, sql.encode()))
            prepared.add(name)
            result = pgconn.exec_prepared(name, values)
    return _checked(pgconn, result)


def _checked(pgconn, result):
    """The result when the statement succeeded; else the psycopg error of its SQLSTATE."""
    if result.status in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        return result
    sqlstate = result.error_field(pq.DiagnosticField.SQLSTATE)
    message = (result.error_message or pgconn.error_message).decode(errors="replace").strip()
    try:
        error = errors.lookup(sqlstate.decode()) if sqlstate else psycopg.OperationalError
    except KeyError:  # a SQLSTATE psycopg has no class for
        error = psycopg.DatabaseError
    raise error(message or "the statement failed without a message from the server")
