"""Shared buckets through Redis (tests/support/redis.py says which one), and failing open."""

from __future__ import annotations

import logging
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import Counter

from api.app import create_app
from api.observability import metrics
from tests.conftest import make_settings
from tests.support.redis import redis_for_tests

Auth = Callable[[str], dict[str, str]]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_for_tests() as url:
        yield url


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own, so runs sharing the Redis never share buckets."""
    value = f"tasks-api-test:{secrets.token_hex(6)}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{value}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def app_client(database_url: str, jwt_secret: str) -> Iterator[Callable[..., TestClient]]:
    with ExitStack() as stack:

        def build(**overrides: object) -> TestClient:
            settings = make_settings(database_url, jwt_secret, **overrides)
            return stack.enter_context(
                TestClient(create_app(settings), raise_server_exceptions=False)
            )

        yield build


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_app_instances_share_one_users_budget_through_redis(
    app_client: Callable[..., TestClient], auth: Auth, alice: str, redis_url: str, prefix: str
) -> None:
    config = {"rate_limit": "60/min", "rate_limit_burst_seconds": 10,
              "redis_url": redis_url, "rate_limit_redis_prefix": prefix}
    first, second = app_client(**config), app_client(**config)
    started = time.monotonic()
    statuses = [
        (first if i % 2 else second).get(f"/api/{alice}/tasks", headers=auth(alice)).status_code
        for i in range(20)
    ]
    refilled = int(time.monotonic() - started) + 1  # 1 token per second of test time, at most
    accepted = statuses.count(200)
    assert 10 <= accepted <= 10 + refilled, statuses
    assert statuses.count(429) == 20 - accepted


def test_the_shared_bucket_lives_in_redis_under_the_prefix_and_expires(
    app_client: Callable[..., TestClient], auth: Auth, alice: str, redis_url: str, prefix: str
) -> None:
    client = app_client(rate_limit="100/s", redis_url=redis_url, rate_limit_redis_prefix=prefix)
    assert client.get(f"/api/{alice}/tasks", headers=auth(alice)).status_code == 200
    store = redis.Redis.from_url(redis_url)
    key = f"{prefix}per-user:{alice}"
    assert float(store.hget(key, "tokens") or -1) == pytest.approx(199, abs=1)
    assert 0 < store.pttl(key) <= 3000


def test_a_request_is_served_when_redis_is_unreachable(
    app_client: Callable[..., TestClient], auth: Auth, alice: str
) -> None:
    client = app_client(rate_limit="100/s", redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    response = client.get(f"/api/{alice}/tasks", headers=auth(alice))
    assert response.status_code == 200
    # The per-process bucket decided instead, and says so in the usual headers.
    assert response.headers["RateLimit-Policy"] == '"per-user";q=200;w=2'


def test_a_redis_that_accepts_but_never_answers_fails_open(
    app_client: Callable[..., TestClient], auth: Auth, alice: str
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshakes; nobody ever replies
        client = app_client(rate_limit="100/s", rate_limit_redis_timeout_seconds=0.2,
                            redis_url=f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        statuses = [client.get(f"/api/{alice}/tasks", headers=auth(alice)).status_code
                    for _ in range(3)]
    assert statuses == [200, 200, 200]


def test_an_unreachable_redis_still_limits_per_process(
    app_client: Callable[..., TestClient], auth: Auth, alice: str
) -> None:
    client = app_client(rate_limit="60/min", rate_limit_burst_seconds=2,
                        redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    statuses = [client.get(f"/api/{alice}/tasks", headers=auth(alice)).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_redis_failures_are_counted_and_logged_once_per_outage(
    app_client: Callable[..., TestClient], auth: Auth, alice: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = app_client(rate_limit="100/s", redis_url=f"redis://127.0.0.1:{closed_port()}/0",
                        rate_limit_redis_retry_seconds=60)
    errors_before = total(metrics.REDIS_ERRORS)
    degraded_before = total(metrics.RATE_LIMIT_DEGRADED)
    with caplog.at_level(logging.WARNING, logger="api.ratelimit.buckets"):
        for _ in range(3):
            assert client.get(f"/api/{alice}/tasks", headers=auth(alice)).status_code == 200
    outage_lines = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(outage_lines) == 1
    # One failed call, then the limiter stops asking Redis for the retry pause.
    assert total(metrics.REDIS_ERRORS) == errors_before + 1
    assert total(metrics.RATE_LIMIT_DEGRADED) == degraded_before + 3


def total(counter: Counter) -> float:
    """The counter's value summed over all its label sets."""
    return sum(
        sample.value
        for family in counter.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )
