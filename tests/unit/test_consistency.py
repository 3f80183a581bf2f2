"""The Consistency-Token codec (api/http/consistency.py): opaque, compact, tamper-evident."""

from __future__ import annotations

import base64
import re
import secrets

import pytest

from api.http.consistency import TOKEN_LENGTH, TOKEN_PATTERN, TokenCodec
from api.problems import BadRequest
from api.settings import ConfigError, Settings


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec(secrets.token_bytes(32))


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_a_token_carries_its_lsn_back(codec: TokenCodec) -> None:
    assert codec.decode(codec.encode(0x16B374D848)) == 0x16B374D848


def test_a_token_is_32_url_safe_characters_matching_the_published_pattern(
    codec: TokenCodec,
) -> None:
    token = codec.encode(2**64 - 1)
    assert len(token) == TOKEN_LENGTH == 32
    assert re.fullmatch(TOKEN_PATTERN, token)


def test_a_token_with_any_byte_altered_is_refused(codec: TokenCodec) -> None:
    raw = base64.urlsafe_b64decode(codec.encode(12345))
    for index in range(len(raw)):
        altered = bytearray(raw)
        altered[index] ^= 0x80
        with pytest.raises(BadRequest):
            codec.decode(base64.urlsafe_b64encode(bytes(altered)).decode())


def test_a_token_signed_with_another_key_is_refused(codec: TokenCodec) -> None:
    with pytest.raises(BadRequest):
        codec.decode(TokenCodec(secrets.token_bytes(32)).encode(1))


@pytest.mark.parametrize("token", ["", "x", "A" * 31, "A" * 33, "+" * 32, "é" * 32, " " * 32])
def test_a_malformed_token_is_a_bad_request(codec: TokenCodec, token: str) -> None:
    with pytest.raises(BadRequest):
        codec.decode(token)


def test_processes_sharing_a_jwt_secret_accept_each_others_tokens() -> None:
    shared = secrets.token_urlsafe(48)
    one = TokenCodec.from_settings(settings(jwt_secret=shared))
    other = TokenCodec.from_settings(settings(jwt_secret=shared))
    assert other.decode(one.encode(42)) == 42


def test_a_dedicated_secret_is_used_instead_of_the_jwt_secret() -> None:
    jwt, dedicated = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    with_dedicated = TokenCodec.from_settings(
        settings(jwt_secret=jwt, consistency_token_secret=dedicated)
    )
    jwt_only = TokenCodec.from_settings(settings(jwt_secret=jwt))
    with pytest.raises(BadRequest):
        jwt_only.decode(with_dedicated.encode(42))


def test_replicas_without_any_secret_refuse_to_start() -> None:
    with pytest.raises(ConfigError, match="CONSISTENCY_TOKEN_SECRET"):
        TokenCodec.from_settings(
            settings(database_url="postgresql://p/db", read_replica_urls=("postgresql://r/db",))
        )
