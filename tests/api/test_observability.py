"""Request ids, access logs and /metrics, as an operator relies on them."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api.app import build_unit_of_work, create_app
from api.observability import metrics
from api.observability.logs import JsonFormatter, redact
from api.observability.metrics import metrics_app, sample_pool_every
from tests.conftest import make_settings

Auth = Callable[[str], dict[str, str]]
LIST_ROUTE = "/api/{user_id}/tasks"


@pytest.fixture
def app_client(database_url: str, jwt_secret: str) -> Iterator[Callable[..., TestClient]]:
    with ExitStack() as stack:

        def build(**overrides: object) -> TestClient:
            settings = make_settings(database_url, jwt_secret, **overrides)
            return stack.enter_context(
                TestClient(create_app(settings), raise_server_exceptions=False)
            )

        yield build


def access_lines(err: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "tasks_api.access"]


def metrics_of(client: TestClient) -> TestClient:
    """The metrics listener of the process `client`'s app runs in (never the public one)."""
    return TestClient(metrics_app(client.app.state.unit_of_work))  # type: ignore[attr-defined]


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = metrics_of(client).get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_valid_client_request_id_is_echoed(
    app_client: Callable[..., TestClient], auth: Auth, alice: str
) -> None:
    client = app_client()
    response = client.get(
        f"/api/{alice}/tasks", headers={**auth(alice), "X-Request-ID": "checkout-42.a:b_c"}
    )
    assert response.headers["X-Request-ID"] == "checkout-42.a:b_c"


def test_a_request_without_an_id_gets_a_generated_one(
    app_client: Callable[..., TestClient],
) -> None:
    first, second = app_client().get("/healthz"), app_client().get("/healthz")
    assert len(first.headers["X-Request-ID"]) == 32
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "sent",
    ["x" * 129, "evil\\nline", "spaces are not ok", "quote\"d", "", "ünïcode"],
    ids=["too-long", "backslash", "spaces", "quote", "empty", "non-ascii"],
)
def test_an_unsafe_request_id_is_replaced(
    app_client: Callable[..., TestClient], sent: str
) -> None:
    response = app_client().get("/healthz", headers=[(b"X-Request-ID", sent.encode())])
    echoed = response.headers["X-Request-ID"]
    assert echoed != sent
    assert len(echoed) == 32 and echoed.isalnum()


def test_errors_refused_before_routing_carry_the_request_id(
    app_client: Callable[..., TestClient], alice: str
) -> None:
    response = app_client().get(f"/api/{alice}/tasks", headers={"X-Request-ID": "trace-401"})
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "trace-401"


def test_json_access_line_names_request_id_route_status_and_user(
    app_client: Callable[..., TestClient], auth: Auth, alice: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = app_client(log_json=True)
    capsys.readouterr()
    client.get(f"/api/{alice}/tasks?status=pending", headers={**auth(alice), "X-Request-ID": "r-1"})
    [line] = [x for x in access_lines(capsys.readouterr().err) if x["request_id"] == "r-1"]
    assert line["route"] == LIST_ROUTE
    assert line["path"] == f"/api/{alice}/tasks"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["user_id"] == alice
    assert isinstance(line["duration_ms"], float)


def test_logs_never_contain_a_token_from_header_or_query(
    app_client: Callable[..., TestClient], token_for: Callable[..., str], alice: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = token_for(alice)
    client = app_client(log_json=True)
    capsys.readouterr()
    client.get(f"/api/{alice}/tasks?access_token={token}",
               headers={"Authorization": f"Bearer {token}"})
    client.get(f"/api/{alice}/tasks", headers={"Authorization": f"Bearer {token}x"})
    client.get(f"/api/{alice}/tasks?token={token}")
    # The test client logs its own requests (URL included); only the server's lines count.
    err = "\n".join(
        line for line in capsys.readouterr().err.splitlines() if '"logger": "httpx' not in line
    )
    assert len(access_lines(err)) == 3
    assert token not in err
    assert token.split(".")[1] not in err  # not even the claims part
    assert "access_token" not in err


def test_text_logs_carry_the_request_id(
    app_client: Callable[..., TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    client = app_client(log_json=False)
    capsys.readouterr()
    client.get("/healthz", headers={"X-Request-ID": "plain-7"})
    [line] = [x for x in capsys.readouterr().err.splitlines() if "tasks_api.access" in x]
    assert "[plain-7]" in line
    assert "GET /healthz 200" in line


def test_formatter_masks_credentials_whoever_logged_them(token_for: Callable[..., str]) -> None:
    token = token_for("someone")
    record = logging.LogRecord(
        "elsewhere", logging.ERROR, __file__, 1, "got Authorization: Bearer %s and %s",
        ("opaque-secret-value", token), None,
    )
    line = JsonFormatter().format(record)
    assert token not in line and "opaque-secret-value" not in line
    assert "Bearer [redacted]" in line and "[jwt]" in line
    assert redact("nothing to hide") == "nothing to hide"


def test_metrics_count_requests_by_route_template_and_status(
    app_client: Callable[..., TestClient], auth: Auth, alice: str
) -> None:
    client = app_client()
    before = scrape(client)
    for _ in range(3):
        client.get(f"/api/{alice}/tasks", headers=auth(alice))
    client.get(f"/api/{alice}/tasks")
    after = scrape(client)
    name, labels = "tasks_api_http_requests_total", {"method": "GET", "route": LIST_ROUTE}
    assert value(after, name, **labels, status="200") - value(before, name, **labels,
                                                               status="200") == 3
    assert value(after, name, **labels, status="401") - value(before, name, **labels,
                                                               status="401") == 1
    assert alice not in metrics_of(client).get("/metrics").text  # no raw paths, no user ids


def test_metrics_expose_a_latency_histogram_per_route(
    app_client: Callable[..., TestClient], auth: Auth, alice: str
) -> None:
    client = app_client()
    client.get(f"/api/{alice}/tasks", headers=auth(alice))
    samples = scrape(client)
    count = value(samples, "tasks_api_http_request_duration_seconds_count",
                  method="GET", route=LIST_ROUTE, status="200")
    slowest = value(samples, "tasks_api_http_request_duration_seconds_bucket",
                    method="GET", route=LIST_ROUTE, status="200", le="+Inf")
    assert count >= 1 and slowest == count


def test_metrics_report_the_database_pool(
    app_client: Callable[..., TestClient], auth: Auth, alice: str
) -> None:
    client = app_client()
    client.get(f"/api/{alice}/tasks", headers=auth(alice))
    samples = scrape(client)
    assert value(samples, "tasks_api_db_pool_connections", state="in_use") == 0
    assert value(samples, "tasks_api_db_pool_connections", state="idle") >= 1
    assert ("tasks_api_db_pool_connections", (("state", "waiting"),)) in samples


def test_each_worker_samples_its_pool_into_the_gauges_without_a_scrape(
    database_url: str, jwt_secret: str
) -> None:
    # With several workers a scrape is answered from the workers' files, so each worker must
    # write its pool's state itself: here, a connection held and then given back.
    uow = build_unit_of_work(make_settings(database_url, jwt_secret))

    def in_use() -> float | None:
        return REGISTRY.get_sample_value("tasks_api_db_pool_connections", {"state": "in_use"})

    async def sampled() -> float | None:
        sampler = asyncio.create_task(sample_pool_every(uow, seconds=0.01))
        await asyncio.sleep(0.05)
        sampler.cancel()
        return in_use()

    try:
        connection = uow.engine.raw_connection()
        assert asyncio.run(sampled()) == 1
        connection.close()
        assert asyncio.run(sampled()) == 0
    finally:
        uow.dispose()


def test_the_app_samples_its_pool_while_it_serves(
    app_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "POOL_SAMPLE_SECONDS", 0.01)
    client = app_client()
    uow = client.app.state.unit_of_work  # type: ignore[attr-defined]
    connection = uow.engine.raw_connection()
    try:
        time.sleep(0.2)
        held = REGISTRY.get_sample_value("tasks_api_db_pool_connections", {"state": "in_use"})
    finally:
        connection.close()
    assert held == 1


def test_metrics_count_requests_lost_to_the_database(
    database_url: str, jwt_secret: str, auth: Auth, alice: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    dead = make_settings(
        f"postgresql://postgres@127.0.0.1:{dead_port}/none", jwt_secret,
        db_connect_timeout_seconds=1,
    )
    with TestClient(create_app(dead, build_unit_of_work(dead)),
                    raise_server_exceptions=False) as client:
        before = scrape(client)
        assert client.get(f"/api/{alice}/tasks", headers=auth(alice)).status_code == 503
        after = scrape(client)
    errors = "tasks_api_db_errors_total"
    labels = {"outcome": "unavailable", "cause": "no_answer"}
    assert value(after, errors, **labels) - value(before, errors, **labels) == 1


def test_metrics_count_rate_limit_rejections(
    app_client: Callable[..., TestClient], auth: Auth, alice: str
) -> None:
    client = app_client(rate_limit="60/min", rate_limit_burst_seconds=1)
    before = scrape(client)
    for _ in range(3):
        client.get(f"/api/{alice}/tasks", headers=auth(alice))
    after = scrape(client)
    name = "tasks_api_rate_limit_rejections_total"
    assert value(after, name, policy="per-user") - value(before, name, policy="per-user") == 2


def test_metrics_can_be_switched_off(app_client: Callable[..., TestClient]) -> None:
    assert app_client(metrics_enabled=False).get("/metrics").status_code == 404


def test_metrics_are_not_on_the_public_listener(app_client: Callable[..., TestClient]) -> None:
    """Finding 10: /metrics answered anyone who could reach the API; `serve` now exposes it on
    a listener of its own (tests/cli/test_serve.py)."""
    response = app_client().get("/metrics")
    assert response.status_code == 404
    assert "tasks_api_" not in response.text


def test_unknown_methods_share_one_metric_label(app_client: Callable[..., TestClient]) -> None:
    client = app_client()
    client.request("BREW", "/healthz")
    text = metrics_of(client).get("/metrics").text
    assert 'method="BREW"' not in text
    assert 'method="other",route="/healthz"' in text


def test_an_unexpected_error_is_a_problem_500_with_the_request_id(
    app_client: Callable[..., TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 3: the 500 is rendered inside the observed path, so it carries the request id,
    the problem+json body and an access line like every other answer."""
    client = app_client(log_json=True)

    def fail() -> None:
        raise RuntimeError("a bug")

    client.app.add_api_route("/test-only/fail", fail)  # type: ignore[attr-defined]
    capsys.readouterr()
    response = client.get("/test-only/fail", headers={"X-Request-ID": "trace-500"})

    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "trace-500"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:tasks-api:problem:internal-error"
    assert "a bug" not in response.text
    [line] = [x for x in access_lines(capsys.readouterr().err) if x["request_id"] == "trace-500"]
    assert line["status"] == 500
