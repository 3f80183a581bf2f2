"""Local mode (no DATABASE_URL): an embedded database and a generated secret for one command."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

SECRET_FILE = "jwt-secret"  # noqa: S105 (a file name, not a secret)


def local_secret(data_dir: Path) -> str:
    """Read the generated secret, creating it (mode 0600) on first use. Never a fixed default."""
    path = data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    log.warning(
        "JWT_SECRET is not set: generated a random development secret in %s. "
        "Mint tokens with `tasks-api token USER_ID`. Set JWT_SECRET for any real deployment.",
        path,
    )
    return secret
