#!/usr/bin/env python3
"""A longer schemathesis run than the suite's (`make fuzz`): same setup, bigger budget.

A fresh migrated database (on TEST_DATABASE_URL, else a private embedded PostgreSQL), a default
`tasks-api serve` on 127.0.0.1 (rate limiting on), two users with minted tokens, all four phases
and every check (tests/contract/fuzzing.py). Prints the seed (pass `--seed` to replay a run) and
the counts; exits non-zero when schemathesis found anything. It stops by itself: the run is
bounded by the example counts and by `--max-minutes`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.auth.tokens import mint_token  # noqa: E402
from tests.contract.fuzzing import Budget, Identity, run  # noqa: E402
from tests.support.postgres import embedded_cluster, throwaway_database  # noqa: E402
from tests.support.server import base_env, serve  # noqa: E402


@contextmanager
def admin_url() -> Iterator[str]:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with embedded_cluster() as url:
        yield url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--max-examples", type=int, default=200, help="per operation and phase")
    parser.add_argument("--max-steps", type=int, default=100, help="stateful steps per scenario")
    parser.add_argument("--workers", type=int, default=1, help="concurrent schemathesis workers")
    parser.add_argument("--max-minutes", type=float, default=30, help="hard stop")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    budget = Budget(seed, args.max_examples, args.max_steps, args.workers)
    secret = secrets.token_urlsafe(48)
    lifetime = int(args.max_minutes * 60) + 600

    def user(name: str) -> Identity:
        user_id = f"{name}-{uuid.uuid4().hex[:12]}"
        return Identity(name, user_id, mint_token(secret, user_id, ttl_seconds=lifetime))

    print(f"fuzz: seed {seed}, {args.max_examples} examples, {args.max_steps} stateful steps")
    if args.workers > 1 and sys.version_info < (3, 12):
        # Seen here: hypothesis describes lambdas with ast.parse, which CPython 3.11 does not
        # make thread-safe ("AST constructor recursion depth mismatch" as a runtime error).
        print("fuzz: note: several workers on Python < 3.12 can fail inside hypothesis itself")
    with (
        admin_url() as admin,
        throwaway_database(admin, prefix="tasks_fuzz") as database_url,
        tempfile.TemporaryDirectory(prefix="tasks-fuzz-") as workdir,
    ):
        env = base_env(DATABASE_URL=database_url, JWT_SECRET=secret)
        env.pop("RATE_LIMIT", None)
        with serve(env, Path(workdir) / "serve.log") as server:
            result = run(
                server.base_url,
                user("alice"),
                user("bob"),
                budget,
                Path(workdir),
                timeout_seconds=args.max_minutes * 60,
            )
    print(result.output)
    print(result.summary())
    print(f"fuzz: seed {seed} (replay with --seed {seed}); exit {result.returncode}")
    return 0 if result.returncode == 0 and result.failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
