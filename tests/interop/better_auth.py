"""Start a real Better Auth server (``server.mjs``) and obtain real JWTs from it.

The server is the unmodified ``better-auth`` npm package pinned in ``package.json`` /
``package-lock.json``, with its in-memory adapter and its JWT plugin. Its dependencies are
installed with ``npm ci`` into a cache directory outside the checkout (keyed by a hash of the
lockfile), so the working tree never gets a ``node_modules``.

Typical use::

    with BetterAuthServer(alg="EdDSA") as server:
        user_id, token = sign_up_and_get_token(server, "a@example.com", "pw-123456789", "A")
        # verify `token` against server.jwks_url, server.issuer, server.audience
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx2 as httpx

from tests.support.npm import CACHE_ROOT, NpmInstallError, npm_ci_cached

__all__ = [
    "DEFAULT_CACHE_DIR",
    "INTEROP_DIR",
    "SUPPORTED_ALGS",
    "BetterAuthError",
    "BetterAuthServer",
    "NodeUnavailableError",
    "ensure_installed",
    "fetch_jwks",
    "get_token",
    "sign_up_and_get_token",
]

INTEROP_DIR = Path(__file__).resolve().parent
"""The directory holding package.json, package-lock.json and server.mjs."""

DEFAULT_CACHE_DIR = CACHE_ROOT / "better-auth"
"""Root of the install cache; each lockfile gets its own ``<sha256[:16]>`` subdirectory."""

SUPPORTED_ALGS = ("EdDSA", "ES256", "ES512", "RS256", "PS256")
"""The asymmetric algorithms the better-auth JWT plugin can sign with (see server.mjs)."""

AUTH_PATH = "/api/auth"
_SERVER_FILE = "server.mjs"
_NPM_TIMEOUT_S = 300.0


class BetterAuthError(RuntimeError):
    """The Better Auth server could not be installed, started or talked to."""


class NodeUnavailableError(BetterAuthError):
    """``node`` or ``npm`` is not on PATH."""


def _require_executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise NodeUnavailableError(
            f"`{name}` was not found on PATH: the Better Auth interop server needs Node.js >= 20 "
            "and npm (e.g. `apt-get install nodejs npm`)."
        )
    return path


def _copy_atomically(src: Path, dest: Path) -> None:
    data = src.read_bytes()
    if dest.exists() and dest.read_bytes() == data:
        return
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def ensure_installed(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """Install the pinned better-auth with ``npm ci`` under ``cache_dir`` (once per lockfile).

    Returns the directory that contains ``node_modules`` and a copy of ``server.mjs``.
    Safe to call from several processes at once; a completed install is reused.
    """
    _require_executable("node")
    npm = _require_executable("npm")
    try:
        install_dir = npm_ci_cached(
            INTEROP_DIR, Path(cache_dir).expanduser(), npm, timeout=_NPM_TIMEOUT_S
        )
    except NpmInstallError as exc:
        raise BetterAuthError(str(exc)) from exc
    # server.mjs is not part of the cache key: refresh the copy on every call.
    _copy_atomically(INTEROP_DIR / _SERVER_FILE, install_dir / _SERVER_FILE)
    return install_dir


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BetterAuthServer:
    """A running Better Auth server on 127.0.0.1 (a context manager).

    Each instance has a fresh random secret and a fresh in-memory database, so its users and
    its signing key (``kid``) are new every start. Pass ``port`` to reuse a port (and so the
    same issuer/audience) across restarts.
    """

    def __init__(
        self,
        alg: str = "EdDSA",
        expiration: str = "15m",
        *,
        port: int | None = None,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        startup_timeout: float = 30.0,
    ) -> None:
        if alg not in SUPPORTED_ALGS:
            raise ValueError(f"alg must be one of {SUPPORTED_ALGS}, not {alg!r}")
        self.alg = alg
        self.expiration = expiration
        self.port = port if port is not None else _free_loopback_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.auth_url = f"{self.base_url}{AUTH_PATH}"
        self.jwks_url = f"{self.auth_url}/jwks"
        self.issuer = self.base_url
        self.audience = self.base_url
        self.startup_timeout = startup_timeout
        self.startup_seconds: float | None = None
        """Seconds from spawning node to the first successful HTTP answer."""
        self._cache_dir = cache_dir
        self._secret = secrets.token_urlsafe(48)
        self._proc: subprocess.Popen[str] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        """The last lines the server printed (stdout and stderr)."""
        return "".join(self._output)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _read_output(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._output.append(line)
            if line.startswith("READY "):
                self._ready.set()

    def start(self) -> Self:
        if self._proc is not None:
            raise BetterAuthError("server already started")
        node = _require_executable("node")
        install_dir = ensure_installed(self._cache_dir)
        env = {
            **os.environ,
            "PORT": str(self.port),
            "BASE_URL": self.base_url,
            "BETTER_AUTH_SECRET": self._secret,
            "JWT_ALG": self.alg,
            "JWT_EXPIRATION": self.expiration,
            "NO_COLOR": "1",
        }
        started = time.monotonic()
        self._proc = subprocess.Popen(
            [node, str(install_dir / _SERVER_FILE)],
            cwd=install_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(
            target=self._read_output, args=(self._proc,), name="better-auth-output", daemon=True
        )
        self._reader.start()
        try:
            self._wait_until_answering(started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_until_answering(self, started: float) -> None:
        deadline = started + self.startup_timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    if self._reader is not None:
                        self._reader.join(timeout=2.0)
                    raise BetterAuthError(
                        f"Better Auth server exited with code {self._proc.returncode} before "
                        f"answering:\n{self.output}"
                    )
                if self._ready.is_set():
                    with contextlib.suppress(httpx.TransportError):
                        if client.get(f"{self.auth_url}/ok").status_code == 200:
                            return
                if time.monotonic() > deadline:
                    raise BetterAuthError(
                        f"Better Auth server did not answer on {self.base_url} within "
                        f"{self.startup_timeout:.0f}s:\n{self.output}"
                    )
                time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server (SIGTERM), then kill it if it has not exited in ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=timeout)
            self._reader = None
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"BetterAuthServer(alg={self.alg!r}, base_url={self.base_url!r}, {state})"


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise BetterAuthError(
            f"{what}: {response.request.method} {response.request.url} answered "
            f"{response.status_code}: {response.text}"
        )
    body: dict[str, Any] = response.json()
    return body


def _client(server: BetterAuthServer) -> httpx.Client:
    # Better Auth rejects state-changing requests whose Origin is not trusted; base_url is.
    return httpx.Client(base_url=server.auth_url, headers={"Origin": server.base_url}, timeout=10.0)


def _fetch_jwt(client: httpx.Client) -> str:
    """GET /token with the session cookie the client holds; returns the signed JWT."""
    token = _check(client.get("/token"), "get JWT")["token"]
    if not isinstance(token, str) or token.count(".") != 2:
        raise BetterAuthError(f"/token did not return a JWT: {token!r}")
    return token


def sign_up_and_get_token(
    server: BetterAuthServer, email: str, password: str, name: str
) -> tuple[str, str]:
    """Create a user (email + password) and return ``(user_id, jwt)``.

    ``user_id`` is Better Auth's user id, which is the JWT's ``sub``. Passwords must be
    8..128 characters (Better Auth's defaults).
    """
    with _client(server) as client:
        body = _check(
            client.post(
                "/sign-up/email", json={"email": email, "password": password, "name": name}
            ),
            "sign up",
        )
        user_id: str = body["user"]["id"]
        return user_id, _fetch_jwt(client)


def get_token(server: BetterAuthServer, email: str, password: str) -> str:
    """Sign an existing user in (new session) and return a freshly signed JWT."""
    with _client(server) as client:
        _check(
            client.post("/sign-in/email", json={"email": email, "password": password}), "sign in"
        )
        return _fetch_jwt(client)


def fetch_jwks(server: BetterAuthServer) -> dict[str, Any]:
    """The server's JSON Web Key Set (``{"keys": [...]}``)."""
    with httpx.Client(timeout=10.0) as client:
        return _check(client.get(server.jwks_url), "get JWKS")
