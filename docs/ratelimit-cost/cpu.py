"""What the rate limiter costs in the API process: CPU per list request, limiter off vs on.

HTTP throughput on a shared 2-core machine swings with everything else running; the CPU the API
process spends per request does not, and it is what bounds a worker's throughput. This drives the
full ASGI stack (request id, rate limits, JWT verification, routing, the real PostgreSQL list
transaction) in-process, 8 requests in flight, random users with their own tokens, the three
configurations alternated in random order, and prints the median CPU per request of each.

    .venv/bin/python docs/ratelimit-cost/cpu.py postgresql://postgres@127.0.0.1:5432/DB

DB: a migrated database with tasks for user1..user200 (run.sh shows how to make one).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import statistics
import sys
import time
from typing import Any

import redis
from fastapi import FastAPI

from api.app import create_app
from api.auth.tokens import mint_token
from api.settings import Settings

REDIS_URL = os.environ.get("REDIS", "redis://127.0.0.1:6379/0")
CONFIGS: dict[str, dict[str, object]] = {
    "off": {"rate_limit": "off"},
    "local": {"rate_limit": "100000/s"},
    "redis": {
        "rate_limit": "100000/s", "redis_url": REDIS_URL, "rate_limit_redis_prefix": "rlcpu:",
    },
}


async def drive(app: FastAPI, tokens: dict[str, str], n: int) -> tuple[float, set[int]]:
    """CPU seconds of this process per request, over n list requests, 8 at a time."""
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    async def client(count: int) -> None:
        for _ in range(count):
            user = random.choice(list(tokens))  # noqa: S311 (load shape, not security)
            path = f"/api/{user}/tasks"
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
                "server": ("127.0.0.1", 80), "state": {},
                "headers": [(b"host", b"bench"),
                            (b"authorization", f"Bearer {tokens[user]}".encode())],
            }
            await app(scope, receive, send)  # type: ignore[arg-type]

    started = time.process_time()
    await asyncio.gather(*(client(n // 8) for _ in range(8)))
    return (time.process_time() - started) / n, statuses


async def main(database_url: str) -> None:
    secret = secrets.token_urlsafe(48)
    tokens = {f"user{u}": mint_token(secret, f"user{u}", ttl_seconds=7200) for u in range(1, 201)}
    apps = {
        name: create_app(Settings.model_validate(
            {"database_url": database_url, "jwt_secret": secret, "log_level": "WARNING", **config}
        ))
        for name, config in CONFIGS.items()
    }
    logging.getLogger().setLevel(logging.WARNING)
    for app in apps.values():
        await drive(app, tokens, 200)  # warm the pools
    store = redis.Redis.from_url(REDIS_URL)
    store.config_resetstat()
    samples: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(int(os.environ.get("ROUNDS", "5"))):
        for name in random.sample(list(apps), len(apps)):
            seconds, statuses = await drive(apps[name], tokens, int(os.environ.get("N", "1500")))
            assert statuses == {200}, statuses
            samples[name].append(seconds * 1e6)
    for name, values in samples.items():
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name:6s} API CPU per list request: median {statistics.median(values):.0f} us "
              f"(runs: {runs})")
    evalsha = store.info("commandstats").get("cmdstat_evalsha", {})
    print(f"redis-server EVALSHA: {evalsha.get('usec_per_call')} us per call")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
