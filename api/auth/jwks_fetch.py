"""Where a JWKS document comes from: an http(s):// URL or a file path (JWT_JWKS_URL).

Each source is a blocking callable returning the document's bytes, bounded in time and size, so
a slow or hostile issuer cannot hold a worker thread or fill memory. Nothing here parses keys.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from api.settings import ConfigError

MAX_JWKS_BYTES = 1024 * 1024

Fetch = Callable[[], bytes]


class JwksError(Exception):
    """The key set could not be fetched or read; the message is for the operator's log."""


def _http_opener() -> urllib.request.OpenerDirector:
    """HTTP(S) only, redirects included: a redirect to file:// or ftp:// finds no handler."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def http_fetch(url: str, timeout_seconds: float) -> Fetch:
    opener = _http_opener()

    def fetch() -> bytes:
        # urllib's timeout bounds each socket operation; the deadline bounds a slow drip too.
        deadline = time.monotonic() + timeout_seconds
        request = urllib.request.Request(  # noqa: S310 (scheme checked: http or https only)
            url, headers={"Accept": "application/jwk-set+json, application/json"}
        )
        body = bytearray()
        try:
            with opener.open(request, timeout=timeout_seconds) as response:
                while chunk := response.read(64 * 1024):
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise JwksError(f"fetching the JWKS took over {timeout_seconds}s")
        except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, bad responses
            raise JwksError(f"cannot fetch the JWKS from {url}: {exc}") from None
        return bytes(body)

    return fetch


def file_fetch(path: Path) -> Fetch:
    def fetch() -> bytes:
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_JWKS_BYTES + 1)
        except OSError as exc:
            raise JwksError(f"cannot read the JWKS file {path}: {exc}") from None
        if len(data) > MAX_JWKS_BYTES:
            raise JwksError(f"the JWKS file is larger than {MAX_JWKS_BYTES} bytes")
        return data

    return fetch


def fetch_for(location: str, timeout_seconds: float) -> Fetch:
    """JWT_JWKS_URL is an http(s):// URL or a file path; anything else is a configuration error."""
    scheme = location.split("://", 1)[0].lower() if "://" in location else None
    if scheme in {"http", "https"}:
        return http_fetch(location, timeout_seconds)
    if scheme is None:
        return file_fetch(Path(location).expanduser())
    raise ConfigError(f"JWT_JWKS_URL must be an http(s):// URL or a file path, not {scheme}://")
