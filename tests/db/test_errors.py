"""Which database failures are the database's (503 + Retry-After) and which are bugs (500)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from db.errors import RetryTransaction, is_unavailable


def wrapped(orig: Exception, *, invalidated: bool = False) -> DBAPIError:
    error = DBAPIError.instance(
        "SELECT 1", {}, orig, psycopg.Error, connection_invalidated=invalidated
    )
    assert isinstance(error, DBAPIError)
    return error


UNAVAILABLE = {
    "admin shutdown 57P01 (Neon scale-to-zero)": errors.AdminShutdown("terminating connection"),
    "crash shutdown 57P02": errors.CrashShutdown("crash"),
    "starting up 57P03": errors.CannotConnectNow("the database system is starting up"),
    "statement timeout 57014": errors.QueryCanceled("canceling statement due to timeout"),
    "too many connections 53300": errors.TooManyConnections("too many clients"),
    "idle in transaction timeout 25P03": errors.IdleInTransactionSessionTimeout("timeout"),
    "read-only after failover 25006": errors.ReadOnlySqlTransaction("read-only"),
    "serialization failure 40001": errors.SerializationFailure("could not serialize"),
    "deadlock 40P01": errors.DeadlockDetected("deadlock detected"),
    "lock not available 55P03": errors.LockNotAvailable("could not obtain lock"),
    "server closed the connection": psycopg.OperationalError(
        "server closed the connection unexpectedly"
    ),
    "connection refused": psycopg.OperationalError("connection refused"),
    "connection already closed": psycopg.InterfaceError("the connection is closed"),
    "pool wait timeout": PoolTimeoutError("QueuePool limit reached"),
    "conflict retries exhausted": RetryTransaction(),
    "disconnect found by SQLAlchemy": wrapped(psycopg.Error("gone"), invalidated=True),
}

NOT_UNAVAILABLE = {
    "unique violation 23505": errors.UniqueViolation("duplicate key"),
    "check violation 23514": errors.CheckViolation("violates check constraint"),
    "undefined column 42703 (a bug)": errors.UndefinedColumn("column does not exist"),
    "RLS refusal 42501 (a bug)": errors.InsufficientPrivilege("permission denied"),
    "client-side programming error": psycopg.ProgrammingError("wrong number of parameters"),
    "not a database error": ValueError("nope"),
}


@pytest.mark.parametrize("error", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_database_trouble_is_unavailable_raw_and_as_wrapped_by_sqlalchemy(
    error: Exception,
) -> None:
    assert is_unavailable(error)
    if isinstance(error, psycopg.Error):
        assert is_unavailable(wrapped(error))


@pytest.mark.parametrize("error", NOT_UNAVAILABLE.values(), ids=NOT_UNAVAILABLE.keys())
def test_errors_that_no_retry_would_fix_are_not_unavailable(error: Exception) -> None:
    assert not is_unavailable(error)
    if isinstance(error, psycopg.Error):
        assert not is_unavailable(wrapped(error))


def test_sqlalchemy_operational_error_wrapping_a_refusal_is_unavailable() -> None:
    refused = psycopg.OperationalError("connection failed: Connection refused")
    assert is_unavailable(OperationalError("connect", {}, refused))
