"""What a database failure means: the one classifier every layer asks.

Three questions, answered from the exception alone:
- `connection_lost`: did the connection (not the statement) fail? Then nothing of the caller's
  ran on it, or the server ended it, and a pooled connection must be replaced.
- `may_repeat`: may the unit of work run the transaction again? Only when that cannot repeat a
  committed effect: PostgreSQL reported a conflict (it rolled back), the work asked for it, or the
  connection was lost before COMMIT was sent.
- `is_unavailable`: is this the database's trouble (down, restarting, overloaded), not the
  request's? The HTTP layer answers it with 503 and `Retry-After`.
"""

from __future__ import annotations

import psycopg
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# serialization_failure, deadlock_detected: PostgreSQL rolled the transaction back and says so.
CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
# 08 connection exception; 53 insufficient resources (too many connections, disk full); 57
# operator intervention (57P01 admin shutdown, as on Neon scale-to-zero; 57P02 crash; 57P03
# starting up; 57014 statement timeout); 58 system error.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "58")
# Conflicts still there after the retries; 55P03 lock not available; 25P03 idle-in-transaction
# timeout; 25006 read-only transaction (a failover left the pool on a standby).
_UNAVAILABLE_SQLSTATES = CONFLICT_SQLSTATES | {"55P03", "25P03", "25006"}
# Connection attempts that no retry can fix: fail at once instead of burning the budget.
_PERMANENT_CONNECT_ERRORS = (
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
)


class RetryTransaction(Exception):
    """Raised by a unit of work to be run again from the start, e.g. after losing a race."""


class ConnectionLost(psycopg.OperationalError):
    """The connection under a raw psycopg call failed (closed, broken, or ended by the server);
    raised with the driver's error as its cause, so the classification is made once."""


def driver_error(exc: BaseException) -> BaseException:
    """The psycopg error under SQLAlchemy's wrapper (or the exception itself)."""
    return exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc


def sqlstate(exc: BaseException) -> str | None:
    value = getattr(driver_error(exc), "sqlstate", None)
    return value if isinstance(value, str) else None


def connection_lost(exc: BaseException) -> bool:
    """The connection failed: SQLAlchemy saw a disconnect, the server ended the session (08,
    57P*), or psycopg found the connection closed or broken.

    A server shutdown in the middle of a pipeline surfaces as "cannot exit pipeline mode while
    busy" on a connection not yet marked broken; the shutdown is in the exception's context.
    """
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated
    if isinstance(exc, ConnectionLost):
        return True
    return any(
        isinstance(cause, psycopg.Error) and (cause.sqlstate or "").startswith(("08", "57P"))
        for cause in (exc, exc.__context__, exc.__cause__)
    )


def server_failed(exc: BaseException) -> bool:
    """The server itself, not this statement, failed: the connection was lost or refused, or
    the server is shutting down, starting up, or out of connections (08, 57P*, 53*).

    A statement cancelled by a timeout or a recovery conflict (57014, 40001) is the statement's
    trouble on a working server, so it does not count.
    """
    if connection_lost(exc) or isinstance(exc, PoolTimeoutError | DisconnectionError):
        return True
    code = sqlstate(exc)
    if code is None:
        return isinstance(driver_error(exc), psycopg.OperationalError | psycopg.InterfaceError)
    return code.startswith(("08", "57P", "53"))


def may_repeat(exc: BaseException, *, reached_commit: bool, disconnects: int) -> bool:
    """Whether running the transaction again cannot repeat a committed effect."""
    if isinstance(exc, RetryTransaction):
        return True
    if sqlstate(exc) in CONFLICT_SQLSTATES:
        return True  # PostgreSQL reports these only for transactions it rolled back
    return connection_lost(exc) and not reached_commit and disconnects == 0


def is_unavailable(exc: BaseException) -> bool:
    """True when the failure is the database's, not the request's.

    Covers failures at any point of the transaction, COMMIT included: a commit whose answer was
    lost is reported as 503, never as success and never as 500.
    """
    if isinstance(exc, PoolTimeoutError | DisconnectionError | RetryTransaction):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    error = driver_error(exc)
    if not isinstance(error, psycopg.Error):
        return False
    code = error.sqlstate
    if code is None:
        # No answer from the server: refused, reset, "server closed the connection
        # unexpectedly", timed out, or the connection was already closed.
        return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
    return code in _UNAVAILABLE_SQLSTATES or code.startswith(_UNAVAILABLE_SQLSTATE_CLASSES)


def is_transient_connect_error(exc: BaseException) -> bool:
    """A connection attempt that may succeed shortly: refused, reset, starting up, overloaded."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    message = str(exc).lower()
    return not any(marker in message for marker in _PERMANENT_CONNECT_ERRORS)


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (the driver's are several lines long), else its
    class name: what a one-line report or refusal shows."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe(exc: BaseException, *, with_message: bool = False) -> str:
    """A short reason for the logs: the SQLSTATE (or the driver's class), and with
    `with_message` the driver's first line ("server closed the connection unexpectedly")."""
    cause = driver_error(exc)
    code = sqlstate(exc)
    if not with_message:
        return code or type(cause).__name__
    first = first_line(cause)[:200] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first}"
