"""/docs works offline (finding 11): Swagger UI comes from an installed package, not a CDN.

A real headless Chromium loads the page from a real `tasks-api serve`, with every host but the
loopback made unresolvable, and the rendered DOM must list every operation of the document.
Before, the page's script came from a CDN without subresource integrity; offline, it was blank.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.support.server import RunningServer, base_env, serve

CHROMIUM = shutil.which("chromium")
DOCUMENT = Path(__file__).resolve().parents[2] / "openapi.json"


@pytest.fixture(scope="module")
def server(
    database_url: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    env = base_env(DATABASE_URL=database_url, JWT_SECRET=jwt_secret, RATE_LIMIT="off")
    with serve(env, tmp_path_factory.mktemp("docs") / "serve.log") as running:
        yield running


def rendered_dom(url: str) -> str:
    """The DOM after Chromium ran the page's scripts, with nothing but the loopback reachable."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (python3 dev.py test installs it)")
    profile = tempfile.mkdtemp(prefix="tasks-api-chromium-")
    try:
        result = subprocess.run(
            [
                CHROMIUM,
                *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic"),
                *("--no-first-run", "--disable-background-networking"),
                *("--disable-component-update", "--disable-sync"),
                f"--user-data-dir={profile}",
                # Offline: any host but the server's own address fails to resolve.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=10000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def operations() -> list[dict[str, Any]]:
    document = json.loads(DOCUMENT.read_text())
    return [op for item in document["paths"].values() for op in item.values()]


def test_the_docs_page_loads_no_asset_from_another_origin(server: RunningServer) -> None:
    page = httpx2.get(f"{server.base_url}/docs", timeout=10)
    assert page.status_code == 200
    assert "://" not in page.text.replace("http-equiv", ""), "an absolute (CDN) URL in /docs"
    assert httpx2.get(f"{server.base_url}/static-offline-docs/swagger-ui-bundle.js").is_success


def test_the_docs_page_renders_every_operation_offline(server: RunningServer) -> None:
    dom = rendered_dom(f"{server.base_url}/docs")
    for operation in operations():
        assert operation["summary"] in dom, operation["operationId"]
        tag = operation["tags"][0]
        assert f'id="operations-{tag}-{operation["operationId"]}"' in dom
