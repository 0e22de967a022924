"""Make every SQLite transaction of the lab servers start with ``BEGIN IMMEDIATE``.

Runs inside the lab venv (imported by the uWSGI entry modules next to it), never in the test
process.

Why: oslo.db switches pysqlite's own transaction handling off and starts each transaction with a
plain, deferred ``BEGIN``.  Two concurrent requests that read and then write (Glance's image
update, Keystone's deletes) both take SHARED locks, then both ask for the write lock; SQLite
detects the deadlock and fails one of them at once ("database is locked", HTTP 500) instead of
waiting for the busy timeout.  ``BEGIN IMMEDIATE`` takes the write lock when the transaction
starts, so concurrent transactions queue behind each other instead.

How: a class-level SQLAlchemy listener rewrites the exact statement ``BEGIN`` on SQLite
connections just before it reaches the cursor.  It relies only on oslo.db emitting ``BEGIN``
through SQLAlchemy, not on oslo.db's internal function names.
"""
import sqlalchemy
from sqlalchemy.engine import Engine


@sqlalchemy.event.listens_for(Engine, "before_cursor_execute", retval=True)
def _begin_immediate(conn, cursor, statement, parameters, context, executemany):
    if conn.dialect.name == "sqlite" and statement.strip().upper() == "BEGIN":
        statement = "BEGIN IMMEDIATE"
    return statement, parameters
