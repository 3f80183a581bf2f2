"""The probes: each command tried as tasks_app, in its own savepoint, against synthetic rows.

Two synthetic users (random ids, so no real tenant is ever addressed) each get one row per
tenant table, inserted as tasks_app under their own identity. Every probe then runs in a
savepoint that is rolled back, so each starts from the same rows.

UPDATE and DELETE are tried in two forms, because PostgreSQL applies a table's SELECT policies
to them only when the statement reads a column: `UPDATE t SET c = 'x' WHERE user_id = $target`
touches nothing under a too-wide UPDATE policy (the SELECT policy hides the rows), while
`UPDATE t SET c = 'x'` with no WHERE rewrites every row that policy admits (so the value is a
constant: `SET c = c` would read c). What the unqualified form did to the target is counted
afterwards, inside the same savepoint, through the target's own view: its rows with a new row
version (xmin) were updated, its missing rows deleted or moved. When the target cannot see its
own rows (its SELECT is broken), the statement's row count beyond the actor's own rows is used.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from db.identity import IDENTITY_SQL, RUNTIME_ROLE, TransactionLimits, identity_params
from db.prove.matrix import Access
from db.prove.rows import TableShape, candidates, insert_statements

_ROLE_ONLY = "SELECT set_config('role', %s, true)"
_CONSTRAINT_SQLSTATES = ("23", "22")  # a sample value the table refused: try the next round


class ProbeFailed(Exception):
    """The table accepted none of the sample values: the proof cannot judge it, only report."""


@dataclass(frozen=True)
class Outcome:
    access: Access
    denied_by: str | None = None


ALLOWED = Outcome(Access.ALLOWED)
HIDDEN = Outcome(Access.DENIED, "rows")


def _refusal(exc: psycopg.errors.InsufficientPrivilege) -> Outcome:
    return Outcome(Access.DENIED, "policy" if "row-level security" in str(exc) else "privilege")


_serials = itertools.count(1)


@dataclass
class TableProbe:
    """The probes of one tenant table; `users` is (target, other): the target's rows are hit."""

    conn: psycopg.Connection[Any]
    shape: TableShape
    users: tuple[str, str]
    updatable: set[str]
    seeded: dict[str, int] = field(default_factory=dict)
    seed_versions: list[str] = field(default_factory=list)
    own_view_works: bool = False
    none_reads_as: str = "''"

    # -- identities --------------------------------------------------------------------------

    def actor(self, identity: str) -> str | None:
        """The app.user_id an identity runs under; None means the transaction never sets it."""
        target, other = self.users
        return {"own": target, "other": other, "none": None, "empty": ""}[identity]

    def become(self, user_id: str | None) -> None:
        if user_id is None:
            self.conn.execute(_ROLE_ONLY, [RUNTIME_ROLE])
            row = self.conn.execute(
                "SELECT quote_nullable(current_setting('app.user_id', true))"
            ).fetchone()
            self.none_reads_as = str(row[0]) if row else "NULL"
            return
        statement, params = IDENTITY_SQL, identity_params(user_id, TransactionLimits())
        self.conn.execute(statement, params)

    def leave(self) -> None:
        """Back to the connecting role with no identity, transaction-locally (pooler-safe)."""
        self.conn.execute("SET LOCAL ROLE NONE")
        self.conn.execute("SET LOCAL app.user_id TO DEFAULT")

    # -- rows --------------------------------------------------------------------------------

    def seed(self) -> bool:
        """One row per synthetic user, each inserted under its own identity; kept until the end."""
        for user in self.users:
            self.become(user)
            outcome = self._insert(user, keep=True)
            self.leave()
            if outcome.access is not Access.ALLOWED:
                return False
            self.seeded[user] = 1
        target = self.users[0]
        query = sql.SQL(
            "SELECT count(*), coalesce(array_agg(xmin::text), '{{}}') FROM {} WHERE user_id = %s"
        ).format(self.shape.identifier)
        try:
            with self.conn.transaction(force_rollback=True):
                self.become(target)
                row = self.conn.execute(query, [target]).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            return True  # no SELECT at all: the unqualified forms fall back to row counts
        if row:
            self.own_view_works = int(row[0]) == self.seeded[target]
            self.seed_versions = list(row[1])
        return True

    def _first_accepted(self, attempts: Iterable[Callable[[], Outcome]], samples: str) -> Outcome:
        """The outcome of the first attempt whose sample value the table's constraints accept.

        A refused sample says nothing about access, only that this table wants other values.
        """
        refused: psycopg.Error | None = None
        for attempt in attempts:
            try:
                return attempt()
            except psycopg.Error as exc:
                if not (exc.sqlstate or "").startswith(_CONSTRAINT_SQLSTATES):
                    raise
                refused = exc
        raise ProbeFailed(
            f"{self.shape.qualified} refused every {samples} "
            f"({str(refused).splitlines()[0] if refused else 'no detail'})"
        )

    def _insert(self, owner: str, *, keep: bool) -> Outcome:
        def attempt(statement: sql.Composed, params: list[Any]) -> Outcome:
            try:
                with self.conn.transaction(force_rollback=not keep):
                    self.conn.execute(statement, params)
                return ALLOWED
            except psycopg.errors.InsufficientPrivilege as exc:
                return _refusal(exc)

        statements = insert_statements(self.shape, owner, next(_serials))
        return self._first_accepted(
            (functools.partial(attempt, statement, params) for statement, params in statements),
            "sample row",
        )

    # -- probes ------------------------------------------------------------------------------

    def probe(self, command: str, identity: str) -> Outcome:
        probes: dict[str, Callable[[str | None], Outcome]] = {
            "select": self._select,
            "insert": self._insert_as,
            "update": self._update,
            "update-owner": self._update_owner,
            "delete": self._delete,
        }
        return probes[command](self.actor(identity))

    def _in_savepoint(self, actor: str | None, work: Callable[[], Outcome]) -> Outcome:
        try:
            with self.conn.transaction(force_rollback=True):
                self.become(actor)
                return work()
        except psycopg.errors.InsufficientPrivilege as exc:
            return _refusal(exc)
        except psycopg.errors.LockNotAvailable:
            # The statement reached a row some other transaction holds: not one of ours, so
            # the identity got further than its own rows.
            return ALLOWED

    def _select(self, actor: str | None) -> Outcome:
        query = sql.SQL("SELECT count(*) FROM {} WHERE user_id = %s").format(self.shape.identifier)

        def work() -> Outcome:
            row = self.conn.execute(query, [self.users[0]]).fetchone()
            return ALLOWED if row and row[0] else HIDDEN

        return self._in_savepoint(actor, work)

    def _insert_as(self, actor: str | None) -> Outcome:
        def work() -> Outcome:
            return self._insert(self.users[0], keep=False)

        return self._in_savepoint(actor, work)

    def _forms(
        self,
        actor: str | None,
        change: sql.Composed,
        touched: Callable[[int], bool],
        params: tuple[Any, ...] = (),
    ) -> Outcome:
        """The targeted and the unqualified form of one change; allowed if either reached."""
        targeted = sql.SQL("{} WHERE user_id = %s").format(change)

        def run_targeted() -> Outcome:
            cursor = self.conn.execute(targeted, [*params, self.users[0]])
            return ALLOWED if cursor.rowcount > 0 else HIDDEN

        def run_unqualified() -> Outcome:
            cursor = self.conn.execute(change, list(params))
            return ALLOWED if touched(cursor.rowcount) else HIDDEN

        outcomes = [self._in_savepoint(actor, form) for form in (run_targeted, run_unqualified)]
        if any(o.access is Access.ALLOWED for o in outcomes):
            return ALLOWED
        for layer in ("privilege", "policy"):
            if any(o.denied_by == layer for o in outcomes):
                return Outcome(Access.DENIED, layer)
        return HIDDEN

    def _target_rows(self, *, rewritten_only: bool = False) -> int:
        """Count the target's rows as the target sees them (inside the probe's savepoint).

        A rewritten row has a row version (xmin) other than the ones the seeds were made with.
        """
        self.become(self.users[0])
        query = "SELECT count(*) FROM {} WHERE user_id = %s"
        params: list[Any] = [self.users[0]]
        if rewritten_only:
            query += " AND NOT (xmin::text = ANY(%s::text[]))"
            params.append(self.seed_versions)
        row = self.conn.execute(sql.SQL(query).format(self.shape.identifier), params).fetchone()
        return int(row[0]) if row else 0

    def _beyond_own(self, actor: str | None, rowcount: int) -> bool:
        """Fallback when the target cannot see its own rows: more rows than the actor owns.

        The target acting on itself owns every row it reached; anyone else owns its seeds.
        """
        if actor == self.users[0]:
            return rowcount > 0
        return rowcount > self.seeded.get(actor or "", 0)

    def _update(self, actor: str | None) -> Outcome:
        """Assign a constant: `SET c = c` would read c, and reading is what hides the rows."""
        name = self.shape.harmless_update_column(self.updatable)
        column = next(c for c in self.shape.columns if c.name == name)
        change = sql.SQL("UPDATE {} SET {} = %s::{}").format(
            self.shape.identifier, sql.Identifier(name), sql.SQL(column.type)
        )

        def touched(rowcount: int) -> bool:
            if not self.own_view_works:
                return self._beyond_own(actor, rowcount)
            return self._target_rows(rewritten_only=True) > 0

        values = candidates(column, next(_serials))
        return self._first_accepted(
            (functools.partial(self._forms, actor, change, touched, (v,)) for v in values),
            f"sample value for {name}",
        )

    def _gone(self, actor: str | None, rowcount: int) -> bool:
        if not self.own_view_works:
            return self._beyond_own(actor, rowcount)
        return self._target_rows() < self.seeded[self.users[0]]

    def _update_owner(self, actor: str | None) -> Outcome:
        # Every identity tries to file the target's rows under the other synthetic user.
        change = sql.SQL("UPDATE {} SET user_id = %s").format(self.shape.identifier)
        return self._forms(
            actor, change, lambda rowcount: self._gone(actor, rowcount), (self.users[1],)
        )

    def _delete(self, actor: str | None) -> Outcome:
        change = sql.SQL("DELETE FROM {}").format(self.shape.identifier)
        return self._forms(actor, change, lambda rowcount: self._gone(actor, rowcount))
