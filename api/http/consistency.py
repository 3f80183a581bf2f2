"""`Consistency-Token`: read-your-writes across read replicas without server-side state.

Every successful write answers with a token for the WAL position its commit is replayed by
(`db.unit_of_work.Committed.lsn`); a list or get that sends it back is served by a replica only
once that replica has replayed that far, else by the primary. The client holds the token, so
any process (or host) behind the load balancer can honour it.

The token is opaque on purpose (clients must not compute with LSNs) and tamper-evident: a
version byte, the LSN (8 bytes, big-endian) and a truncated HMAC-SHA256 over both, base64url
without padding: 32 characters. A forged token could only send the forger's own reads to the
primary, so the MAC is about refusing garbage clearly (400), not about secrecy. Its key comes
from `CONSISTENCY_TOKEN_SECRET`, else is derived from `JWT_SECRET` (so every process of one
deployment agrees without new configuration); the derivation labels keep the two uses apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import struct
from typing import Annotated

from fastapi import Depends, Header, Request

from api.problems import BadRequest
from api.settings import ConfigError, Settings

log = logging.getLogger(__name__)

HEADER = "Consistency-Token"
_VERSION = 1
_LSN = struct.Struct(">BQ")
_MAC_BYTES = 15
TOKEN_LENGTH = 4 * (_LSN.size + _MAC_BYTES) // 3
TOKEN_PATTERN = f"^[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}$"
_TOKEN = re.compile(TOKEN_PATTERN)
_KEY_LABEL = b"tasks-api consistency-token v1"


class TokenCodec:
    """Encodes a commit LSN as a token and checks tokens sent back."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCodec:
        secret = settings.consistency_token_secret or settings.jwt_secret
        if secret is not None:
            return cls(hmac.digest(secret.get_secret_value().encode(), _KEY_LABEL, "sha256"))
        if settings.read_replica_urls:
            raise ConfigError(
                "CONSISTENCY_TOKEN_SECRET (or JWT_SECRET) is required with DATABASE_READ_URL: "
                "every process must verify the Consistency-Token another one issued"
            )
        log.warning(
            "no CONSISTENCY_TOKEN_SECRET or JWT_SECRET: Consistency-Token is verifiable only by "
            "this process (`tasks-api serve` shares one key among its workers; set "
            "CONSISTENCY_TOKEN_SECRET when several hosts serve one database)"
        )
        return cls(secrets.token_bytes(32))

    def encode(self, lsn: int) -> str:
        payload = _LSN.pack(_VERSION, lsn)
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode()

    def decode(self, token: str) -> int:
        """The LSN in a token this deployment issued; BadRequest (400) for anything else."""
        if not _TOKEN.fullmatch(token):
            raise BadRequest(f"{HEADER} is malformed; send back the value a write returned.")
        raw = base64.urlsafe_b64decode(token)
        payload, mac = raw[: _LSN.size], raw[_LSN.size :]
        version, lsn = _LSN.unpack(payload)
        if version != _VERSION or not hmac.compare_digest(mac, self._mac(payload)):
            raise BadRequest(f"{HEADER} was not issued by this service, or was altered.")
        return int(lsn)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.digest(self._key, payload, hashlib.sha256)[:_MAC_BYTES]


TokenHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description="The `Consistency-Token` of your last write: the answer then includes that "
        "write (a replica serves it only once it has replayed it, else the primary does). "
        "Without it the answer may lag your writes by up to `READ_REPLICA_MAX_LAG_MS`. A value "
        "this service did not issue is 400.",
        # Published, not enforced by FastAPI: a malformed token is 400 (SPEC), not 422.
        json_schema_extra={"pattern": TOKEN_PATTERN, "maxLength": TOKEN_LENGTH},
    ),
]


async def token_codec(request: Request) -> TokenCodec:
    codec: TokenCodec = request.app.state.consistency_tokens
    return codec


Tokens = Annotated[TokenCodec, Depends(token_codec)]


async def read_after(codec: Tokens, token: TokenHeader = None) -> int | None:
    """The LSN a read must reflect, from the request's `Consistency-Token` (None without)."""
    return None if token is None else codec.decode(token)

