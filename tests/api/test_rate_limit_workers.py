"""The limit across processes: `tasks-api serve --workers 2`, with Redis and without.

One user sends a bounded burst over many connections (each request on a new connection, so the
kernel spreads them over both workers). With REDIS_URL the two workers spend one shared budget;
without it each worker has its own, as docs/operations.md says.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import redis

from api.auth.tokens import mint_token
from tests.support.redis import redis_for_tests
from tests.support.server import RunningServer, base_env, serve

CAPACITY = 30  # RATE_LIMIT=60/min (1 token/s) with a 30-second burst
REQUESTS = 90
CONNECTIONS = 6
LIST_ROUTE = "/api/{user_id}/tasks"


@dataclass
class Burst:
    statuses: list[int]
    seconds: float
    accepted_by_pid: Counter[int]
    served_by_pid: Counter[int]

    @property
    def accepted(self) -> int:
        return self.statuses.count(200)

    @property
    def refill_bound(self) -> int:
        """Tokens that can have come back during the burst (1 per second, rounded up)."""
        return int(self.seconds) + 1


def start(database_url: str, jwt_secret: str, tmp: Path, **env: str) -> Iterator[RunningServer]:
    settings = base_env(
        DATABASE_URL=database_url,
        JWT_SECRET=jwt_secret,
        RATE_LIMIT="60/min",
        RATE_LIMIT_BURST_SECONDS=str(CAPACITY),
        LOG_JSON="true",
        **env,
    )
    settings.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with serve(
        settings, tmp / "server.log", "--workers", "2", ready_path="/healthz", metrics=True
    ) as server:
        wait_for_workers(server, 2)
        yield server


def wait_for_workers(server: RunningServer, count: int, timeout: float = 60.0) -> None:
    """/healthz answering proves one worker is up; a burst needs every worker accepting."""
    deadline = time.monotonic() + timeout
    while server.log().count("Application startup complete") < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} workers started:\n{server.log()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_for_tests() as url:
        yield url


@pytest.fixture(scope="module")
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"tasks-api-test:{secrets.token_hex(6)}:"
    yield prefix
    store = redis.Redis.from_url(redis_url)
    keys = list(store.scan_iter(match=f"{prefix}*"))
    if keys:
        store.delete(*keys)


@pytest.fixture(scope="module")
def shared_server(
    database_url: str, jwt_secret: str, redis_url: str, redis_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    yield from start(
        database_url, jwt_secret, tmp_path_factory.mktemp("shared"),
        REDIS_URL=redis_url, RATE_LIMIT_REDIS_PREFIX=redis_prefix,
    )


@pytest.fixture(scope="module")
def local_server(
    database_url: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    yield from start(database_url, jwt_secret, tmp_path_factory.mktemp("local"))


def access_lines(server: RunningServer) -> list[dict[str, object]]:
    lines = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("logger") == "tasks_api.access"]


def burst(server: RunningServer, user: str, token: str) -> Burst:
    """REQUESTS list requests from one user, spread over CONNECTIONS threads, all at once."""
    request_ids = [f"burst-{user}-{i}" for i in range(REQUESTS)]

    def send(client: httpx2.Client, request_id: str) -> int:
        headers = {"Authorization": f"Bearer {token}", "X-Request-ID": request_id,
                   "Connection": "close"}
        return client.get(f"/api/{user}/tasks", headers=headers).status_code

    with httpx2.Client(base_url=server.base_url, timeout=10) as client, \
            ThreadPoolExecutor(CONNECTIONS) as pool:
        started = time.monotonic()
        statuses = list(pool.map(lambda rid: send(client, rid), request_ids))
        seconds = time.monotonic() - started
    time.sleep(0.2)  # let the workers flush their access lines
    mine = [x for x in access_lines(server) if str(x["request_id"]).startswith(f"burst-{user}-")]
    assert len(mine) == REQUESTS
    return Burst(
        statuses,
        seconds,
        Counter(int(x["pid"]) for x in mine if x["status"] == 200),  # type: ignore[call-overload]
        Counter(int(x["pid"]) for x in mine),  # type: ignore[call-overload]
    )


def report(label: str, result: Burst) -> None:
    print(
        f"\n[{label}] {REQUESTS} requests, {CONNECTIONS} threads, {result.seconds:.2f}s: "
        f"accepted {result.accepted} (budget {CAPACITY} + <= {result.refill_bound} refill), "
        f"429 {result.statuses.count(429)}, served per worker {dict(result.served_by_pid)}, "
        f"accepted per worker {dict(result.accepted_by_pid)}"
    )


def test_two_workers_share_one_budget_through_redis(
    shared_server: RunningServer, jwt_secret: str
) -> None:
    user = f"burst-{secrets.token_hex(4)}"
    result = burst(shared_server, user, mint_token(jwt_secret, user))
    report("redis, 2 workers", result)
    assert len(result.served_by_pid) == 2, "the burst must reach both workers"
    assert set(result.statuses) <= {200, 429}
    assert CAPACITY <= result.accepted <= CAPACITY + result.refill_bound


def test_without_redis_each_worker_has_its_own_budget(
    local_server: RunningServer, jwt_secret: str
) -> None:
    user = f"burst-{secrets.token_hex(4)}"
    result = burst(local_server, user, mint_token(jwt_secret, user))
    report("per process, 2 workers", result)
    assert len(result.served_by_pid) == 2, "the burst must reach both workers"
    for pid, served in result.served_by_pid.items():
        accepted = result.accepted_by_pid[pid]
        assert accepted <= CAPACITY + result.refill_bound
        # A worker refuses only once its own bucket has run dry.
        assert accepted == served or accepted >= CAPACITY


def test_metrics_of_both_workers_are_summed_in_one_scrape(
    shared_server: RunningServer, jwt_secret: str
) -> None:
    user = f"metrics-{secrets.token_hex(4)}"
    before = scrape(shared_server)
    result = burst(shared_server, user, mint_token(jwt_secret, user))
    after = scrape(shared_server)
    assert len(result.served_by_pid) == 2
    served = sum(after[k] - before.get(k, 0.0) for k in after
                 if k[0] == "tasks_api_http_requests_total" and ("route", LIST_ROUTE) in k[1])
    refused = after[("tasks_api_rate_limit_rejections_total", (("policy", "per-user"),))] - \
        before.get(("tasks_api_rate_limit_rejections_total", (("policy", "per-user"),)), 0.0)
    assert served == REQUESTS
    assert refused == result.statuses.count(429)


def test_served_access_logs_carry_request_ids_and_never_the_token(
    shared_server: RunningServer, jwt_secret: str
) -> None:
    user = f"logs-{secrets.token_hex(4)}"
    token = mint_token(jwt_secret, user)
    response = httpx2.get(f"{shared_server.base_url}/api/{user}/tasks?access_token={token}",
                          headers={"Authorization": f"Bearer {token}", "X-Request-ID": user})
    assert response.headers["X-Request-ID"] == user
    time.sleep(0.2)
    [line] = [x for x in access_lines(shared_server) if x["request_id"] == user]
    assert line["route"] == LIST_ROUTE and line["status"] == 200
    assert token not in shared_server.log()
    assert token.split(".")[1] not in shared_server.log()


def scrape(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    assert server.metrics_url is not None
    text = httpx2.get(server.metrics_url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
