"""A bad token never gets anywhere: 401, problem+json, a Bearer challenge, no database work.

Every case starts from a token the app accepts (the positive controls at the bottom prove it) and
breaks one thing. The app allows HS256 (shared secret) and RS256/EdDSA (a JWKS file) and requires
`iss` and `aud`, so each algorithm path and each claim rule is exercised.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.app import create_app
from tests.conftest import make_settings
from tests.support.jwks import SigningKey, jwks_of, new_key

ISSUER = "https://issuer.example"
AUDIENCE = "tasks-api"
LEEWAY = 30
DROP = object()  # a claim or header member to leave out


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: object) -> str:
    return b64(json.dumps(value).encode())


@dataclass
class Forge:
    """Makes the valid token each case starts from, and the pieces to break it with."""

    secret: str
    rsa: SigningKey
    ed: SigningKey
    es: SigningKey  # published in the JWKS, but ES256 is not on the allow-list
    attacker_rsa: SigningKey
    attacker_ed: SigningKey
    user: str = field(default_factory=lambda: f"victim-{uuid.uuid4().hex[:12]}")

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"sub": self.user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not DROP}

    def hs(
        self,
        claims: Any = None,
        *,
        key: bytes | None = None,
        alg: str = "HS256",
        header: dict[str, Any] | None = None,
    ) -> str:
        """HMAC-signed by hand: PyJWT refuses to sign with some keys an attacker would use."""
        head = {"alg": alg, "typ": "JWT", **(header or {})}
        head = {k: v for k, v in head.items() if v is not DROP}
        body = self.claims() if claims is None else claims
        signing_input = f"{segment(head)}.{segment(body)}"
        digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
        mac = hmac.new(key or self.secret.encode(), signing_input.encode(), digest).digest()
        return f"{signing_input}.{b64(mac)}"

    def hs_raw(self, header: bytes, claims: bytes) -> str:
        """HMAC-signed over JSON text as given: duplicate members, a BOM, non-JSON numbers."""
        signing_input = f"{b64(header)}.{b64(claims)}"
        mac = hmac.new(self.secret.encode(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"

    def claims_json(self, **changes: Any) -> bytes:
        return json.dumps(self.claims(**changes)).encode()

    def unsigned(self, alg: object, signature: str = "") -> str:
        return f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(self.claims())}.{signature}"


@dataclass
class Sent:
    """What a case puts on the wire: Authorization header values, query, other headers."""

    authorization: list[str | bytes]
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def bearer(token: str) -> Sent:
    return Sent([f"Bearer {token}"])


def _parts(token: str) -> list[str]:
    return token.split(".")


def _tampered(f: Forge) -> str:
    head, _, sig = _parts(f.hs())
    return f"{head}.{segment(f.claims(sub='someone-else'))}.{sig}"


def _foreign_signature(f: Forge) -> str:
    head, body, _ = _parts(f.hs())
    return f"{head}.{body}.{_parts(f.hs(f.claims(sub='other')))[2]}"


def _signed_raw(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Signed by hand, for headers PyJWT would refuse to write."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    signature = jwt.get_algorithm_by_name(key.alg).sign(signing_input.encode(), key.private)
    return f"{signing_input}.{b64(signature)}"


def _public_pem(key: SigningKey) -> bytes:
    return key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _raw_ed25519_public(key: SigningKey) -> bytes:
    return key.private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def _with_member_first(document: bytes, name: str, value: object) -> bytes:
    """`document` (a JSON object) with `name` also sent before its own members: a duplicate."""
    return b"{" + json.dumps(name).encode() + b": " + json.dumps(value).encode() + b", " + \
        document[1:]


_HS256_HEADER = b'{"alg": "HS256", "typ": "JWT"}'
BOM = b"\xef\xbb\xbf"
# Deeper than the JSON parser recurses, and still short enough for the Authorization limit.
_DEEP = b"[" * 1500 + b"]" * 1500
_DEEP_HEADER = b'{"alg": "HS256", "x": ' + _DEEP + b"}"


def _padded_signature(f: Forge) -> str:
    token = f.hs()  # an HMAC-SHA256 is 32 bytes: 43 characters unpadded, 44 with one `=`
    assert len(token.rsplit(".", 1)[1]) % 4 == 3
    return token + "="


def _padded_claims(f: Forge) -> str:
    pad = ""
    while len(f.claims_json(x=pad)) % 3 == 0:  # lengths that base64 without padding
        pad += "p"
    head, _, _ = _parts(f.hs())
    claims = base64.urlsafe_b64encode(f.claims_json(x=pad)).decode()
    signing_input = f"{head}.{claims}"
    mac = hmac.new(f.secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def _around(token: str, space: bytes) -> Sent:
    return Sent([b"Bearer " + space + token.encode() + space])


Case = Callable[[Forge], Sent]

CORPUS: list[Any] = [
    # -- the header itself --------------------------------------------------------------------
    pytest.param(lambda f: Sent([]), id="no-authorization-header"),
    pytest.param(lambda f: Sent([""]), id="empty-authorization-header"),
    pytest.param(lambda f: Sent([f"Basic {b64(b'alice:pw')}"]), id="basic-scheme"),
    pytest.param(lambda f: Sent([f"Token {f.hs()}"]), id="token-scheme-with-valid-jwt"),
    pytest.param(lambda f: Sent([f.hs()]), id="jwt-without-scheme"),
    pytest.param(lambda f: Sent(["Bearer"]), id="bearer-without-token"),
    pytest.param(lambda f: Sent(["Bearer     "]), id="bearer-with-only-spaces"),
    pytest.param(lambda f: Sent([f"Bearer {f.hs()} {f.hs()}"]), id="bearer-with-two-tokens"),
    pytest.param(lambda f: Sent([b"Bearer \xff\xfe\xfd"]), id="non-ascii-bytes"),
    pytest.param(lambda f: Sent(["Bearer " + "a" * 9000]), id="oversized-authorization-header"),
    pytest.param(lambda f: Sent([f"Bearer {f.hs()}", f"Bearer {f.hs()}"]), id="two-auth-headers"),
    pytest.param(lambda f: Sent([], params={"access_token": f.hs()}), id="token-in-query-string"),
    pytest.param(
        lambda f: Sent([], headers={"Cookie": f"access_token={f.hs()}"}), id="token-in-cookie"
    ),
    # -- structure and encoding -----------------------------------------------------------------
    pytest.param(lambda f: bearer("abc"), id="one-segment"),
    pytest.param(lambda f: bearer(".".join(_parts(f.hs())[:2])), id="two-segments"),
    pytest.param(lambda f: bearer(f.hs() + ".c2ln"), id="four-segments"),
    pytest.param(lambda f: bearer(f.hs() + ".a.b"), id="five-segments-jwe-shape"),
    pytest.param(lambda f: bearer("@@@." + f.hs().split(".", 1)[1]), id="invalid-base64-header"),
    pytest.param(
        lambda f: bearer(f"{_parts(f.hs())[0]}.@@@.{_parts(f.hs())[2]}"),
        id="invalid-base64-payload",
    ),
    pytest.param(
        lambda f: bearer(f"{b64(b'not json')}.{_parts(f.hs())[1]}.sig"), id="non-json-header"
    ),
    pytest.param(lambda f: bearer(f.hs("not json")), id="non-json-payload"),
    pytest.param(
        lambda f: bearer(f"{segment(['HS256'])}.{segment(f.claims())}.sig"),
        id="header-is-a-json-array",
    ),
    pytest.param(lambda f: bearer(f.hs(["sub", f.user])), id="payload-is-a-json-array"),
    # Finding 8: one reading of every token; two JSON parsers must never get to disagree.
    pytest.param(
        lambda f: bearer(f.hs_raw(_HS256_HEADER, _with_member_first(f.claims_json(), "sub", "x"))),
        id="duplicate-sub-claim",
    ),
    pytest.param(
        lambda f: bearer(
            f.hs_raw(_with_member_first(_HS256_HEADER, "alg", "none"), f.claims_json())
        ),
        id="duplicate-alg-header-member",
    ),
    pytest.param(
        lambda f: bearer(f.hs_raw(BOM + _HS256_HEADER, f.claims_json())), id="bom-in-header"
    ),
    pytest.param(
        lambda f: bearer(f.hs_raw(_HS256_HEADER, BOM + f.claims_json())), id="bom-in-claims"
    ),
    pytest.param(
        lambda f: bearer(f.hs_raw(_DEEP_HEADER, f.claims_json())), id="header-nested-too-deep"
    ),
    pytest.param(
        lambda f: bearer(f.hs_raw(_HS256_HEADER, f.claims_json()[:-1] + b', "x": ' + _DEEP + b"}")),
        id="claims-nested-too-deep",
    ),
    pytest.param(lambda f: bearer(_padded_signature(f)), id="padded-signature"),
    pytest.param(lambda f: bearer(_padded_claims(f)), id="padded-claims"),
    # The test client sends this as UTF-8; tests/unit/test_auth_middleware.py sends the raw byte.
    pytest.param(
        lambda f: _around(f.hs(), "\u00a0".encode()), id="no-break-spaces-around-token"
    ),
    pytest.param(
        lambda f: bearer(f.hs_raw(_HS256_HEADER, f.claims_json().replace(b"}", b', "x": NaN}'))),
        id="nan-in-claims",
    ),
    # -- algorithm --------------------------------------------------------------------------------
    pytest.param(lambda f: bearer(f.unsigned("none")), id="alg-none"),
    pytest.param(lambda f: bearer(f.unsigned("None")), id="alg-None"),
    pytest.param(lambda f: bearer(f.unsigned("NONE")), id="alg-NONE"),
    pytest.param(
        lambda f: bearer(f.unsigned("none", _parts(f.hs())[2])), id="alg-none-with-a-signature"
    ),
    pytest.param(lambda f: bearer(f.hs(header={"alg": DROP})), id="alg-missing"),
    pytest.param(lambda f: bearer(f.unsigned(256, "c2ln")), id="alg-not-a-string"),
    pytest.param(lambda f: bearer(f.hs(alg="HS512")), id="alg-hs512-outside-allow-list"),
    pytest.param(lambda f: bearer(f.es.sign(f.claims())), id="alg-es256-outside-allow-list"),
    # -- signature --------------------------------------------------------------------------------
    pytest.param(lambda f: bearer(f.hs(key=secrets.token_bytes(48))), id="wrong-secret"),
    pytest.param(lambda f: bearer(_tampered(f)), id="tampered-payload-old-signature"),
    pytest.param(lambda f: bearer(f.hs().rsplit(".", 1)[0] + "."), id="signature-stripped"),
    pytest.param(lambda f: bearer(_foreign_signature(f)), id="signature-of-another-token"),
    pytest.param(lambda f: bearer(f.hs()[:-4]), id="signature-truncated"),
    # -- time claims ------------------------------------------------------------------------------
    pytest.param(
        lambda f: bearer(f.hs(f.claims(exp=int(time.time()) - LEEWAY - 60))),
        id="expired-beyond-leeway",
    ),
    pytest.param(
        lambda f: bearer(f.hs(f.claims(nbf=int(time.time()) + LEEWAY + 300))),
        id="nbf-in-the-future",
    ),
    pytest.param(
        lambda f: bearer(f.hs(f.claims(iat=int(time.time()) + LEEWAY + 300))),
        id="iat-in-the-future",
    ),
    pytest.param(lambda f: bearer(f.hs(f.claims(nbf="soon"))), id="nbf-a-string"),
    pytest.param(lambda f: bearer(f.hs(f.claims(exp=DROP))), id="exp-missing"),
    pytest.param(
        lambda f: bearer(f.hs(f.claims(exp=str(int(time.time()) + 600)))), id="exp-a-string"
    ),
    pytest.param(lambda f: bearer(f.hs(f.claims(exp=time.time() + 600.5))), id="exp-a-float"),
    pytest.param(lambda f: bearer(f.hs(f.claims(exp=True))), id="exp-a-boolean"),
    pytest.param(lambda f: bearer(f.hs(f.claims(exp=10**12))), id="exp-absurdly-large"),
    pytest.param(lambda f: bearer(f.hs(f.claims(exp=2**70))), id="exp-beyond-64-bits"),
    # Finding 3: a NumericDate too large for a float must not overflow into a 500.
    pytest.param(lambda f: bearer(f.hs(f.claims(exp=int("9" * 309)))), id="exp-309-digits"),
    pytest.param(lambda f: bearer(f.hs(f.claims(nbf=int("9" * 309)))), id="nbf-309-digits"),
    pytest.param(lambda f: bearer(f.hs(f.claims(iat=int("9" * 309)))), id="iat-309-digits"),
    # PyJWT would take a numeric string for iat and nbf: a NumericDate is an integer.
    pytest.param(
        lambda f: bearer(f.hs(f.claims(iat=str(int(time.time()))))), id="iat-a-numeric-string"
    ),
    pytest.param(lambda f: bearer(f.hs(f.claims(nbf="1"))), id="nbf-a-numeric-string"),
    pytest.param(lambda f: bearer(f.hs(f.claims(nbf=1.5))), id="nbf-a-float"),
    pytest.param(
        lambda f: bearer(
            f.hs_raw(_HS256_HEADER, f.claims_json(exp=DROP)[:-1] + b', "exp": 1e999}')
        ),
        id="exp-overflowing-float",
    ),
    pytest.param(
        lambda f: bearer(f.hs(f.claims(exp=int(time.time()) + 30 * 86400))),
        id="exp-beyond-max-lifetime",
    ),
    # -- identity claim ---------------------------------------------------------------------------
    pytest.param(lambda f: bearer(f.hs(f.claims(sub=DROP))), id="sub-missing"),
    pytest.param(lambda f: bearer(f.hs(f.claims(sub=""))), id="sub-empty"),
    pytest.param(lambda f: bearer(f.hs(f.claims(sub=42))), id="sub-a-number"),
    pytest.param(lambda f: bearer(f.hs(f.claims(sub=[f.user]))), id="sub-a-list"),
    pytest.param(lambda f: bearer(f.hs(f.claims(sub={"id": f.user}))), id="sub-an-object"),
    pytest.param(lambda f: bearer(f.hs(f.claims(sub=None))), id="sub-null"),
    pytest.param(lambda f: bearer(f.hs(f.claims(sub=True))), id="sub-a-boolean"),
    pytest.param(lambda f: bearer(f.hs(f.claims(sub=f.user + "\x00x"))), id="sub-with-nul"),
    pytest.param(lambda f: bearer(f.hs(f.claims(sub=f.user + "\nx"))), id="sub-with-newline"),
    pytest.param(lambda f: bearer(f.hs(f.claims(sub=f.user + "\x1b[31m"))), id="sub-with-escape"),
    pytest.param(lambda f: bearer(f.hs(f.claims(sub=f.user + "\x85"))), id="sub-with-c1-control"),
    pytest.param(lambda f: bearer(f.hs(f.claims(sub="u" * 256))), id="sub-longer-than-column"),
    # -- issuer and audience ----------------------------------------------------------------------
    pytest.param(lambda f: bearer(f.hs(f.claims(iss="https://evil.example"))), id="iss-mismatch"),
    pytest.param(lambda f: bearer(f.hs(f.claims(iss=DROP))), id="iss-missing"),
    pytest.param(lambda f: bearer(f.hs(f.claims(aud="another-api"))), id="aud-mismatch"),
    pytest.param(lambda f: bearer(f.hs(f.claims(aud=DROP))), id="aud-missing"),
    pytest.param(lambda f: bearer(f.hs(f.claims(aud=["a", "b"]))), id="aud-list-without-us"),
    # -- asymmetric keys (JWKS) -------------------------------------------------------------------
    pytest.param(lambda f: bearer(f.attacker_rsa.sign(f.claims())), id="kid-unknown"),
    pytest.param(
        lambda f: bearer(f.attacker_rsa.sign(f.claims(), kid=f.rsa.kid)),
        id="rs256-known-kid-signed-by-attacker",
    ),
    pytest.param(
        lambda f: bearer(f.attacker_ed.sign(f.claims(), kid=f.ed.kid)),
        id="eddsa-known-kid-signed-by-attacker",
    ),
    pytest.param(
        lambda f: bearer(f.rsa.sign(f.claims(), kid=f.ed.kid)),
        id="rs256-token-naming-an-ed25519-key",
    ),
    pytest.param(
        lambda f: bearer(_signed_raw(f.rsa, {"alg": "RS256", "kid": 5}, f.claims())),
        id="kid-not-a-string",
    ),
    pytest.param(
        lambda f: bearer(f.attacker_rsa.sign(f.claims(), jku="https://evil.example/jwks")),
        id="jku-header-pointing-at-attacker-keys",
    ),
    pytest.param(
        lambda f: bearer(f.attacker_rsa.sign(f.claims(), kid=None, jwk=f.attacker_rsa.jwk)),
        id="embedded-jwk-header",
    ),
    pytest.param(
        lambda f: bearer(f.hs(header={"crit": ["x-ext"], "x-ext": 1})), id="crit-unknown-extension"
    ),
    pytest.param(
        lambda f: bearer(f.hs(key=_public_pem(f.rsa), header={"kid": f.rsa.kid})),
        id="rs256-public-pem-as-hs256-secret",
    ),
    pytest.param(
        lambda f: bearer(f.hs(key=_raw_ed25519_public(f.ed), header={"kid": f.ed.kid})),
        id="ed25519-public-key-as-hs256-secret",
    ),
]


@pytest.fixture(scope="module")
def forge(jwt_secret: str) -> Forge:
    return Forge(
        secret=jwt_secret,
        rsa=new_key("RS256", "rsa-1"),
        ed=new_key("EdDSA", "ed-1"),
        es=new_key("ES256", "es-1"),
        attacker_rsa=new_key("RS256", "attacker-rsa"),
        attacker_ed=new_key("EdDSA", "attacker-ed"),
    )


@pytest.fixture(scope="module")
def client(
    database_url: str, jwt_secret: str, forge: Forge, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    jwks_file: Path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    jwks_file.write_text(json.dumps(jwks_of(forge.rsa, forge.ed, forge.es)))
    settings = make_settings(
        database_url,
        jwt_secret,
        jwt_algorithms=("HS256", "RS256", "EdDSA"),
        jwt_jwks_url=str(jwks_file),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_leeway_seconds=LEEWAY,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def checkouts(client: TestClient) -> list[int]:
    """How many times a pooled database connection was handed out (one slot, mutable)."""
    count = [0]

    def on_checkout(*_: object) -> None:
        count[0] += 1

    event.listen(client.app.state.unit_of_work.engine, "checkout", on_checkout)  # type: ignore[attr-defined]
    return count


def send(client: TestClient, forge: Forge, sent: Sent) -> Any:
    headers = [
        (b"authorization", v if isinstance(v, bytes) else v.encode("latin-1"))
        for v in sent.authorization
    ]
    headers += [(k.encode(), v.encode()) for k, v in sent.headers.items()]
    return client.get(f"/api/{forge.user}/tasks", params=sent.params, headers=headers)


@pytest.mark.parametrize("case", CORPUS)
def test_hostile_token_is_refused_before_the_database(
    client: TestClient, forge: Forge, checkouts: list[int], case: Case
) -> None:
    sent = case(forge)
    before = checkouts[0]

    response = send(client, forge, sent)

    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) == bool(sent.authorization)
    assert checkouts[0] == before, "a database connection was checked out for a refused token"


def test_corpus_has_at_least_forty_distinct_cases() -> None:
    ids = [p.id for p in CORPUS]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)


# -- positive controls: the tokens every case starts from are accepted ------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_case_insensitive(client: TestClient, forge: Forge, scheme: str) -> None:
    response = send(client, forge, Sent([f"{scheme} {forge.hs()}"]))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("signer", ["hs256", "rs256", "eddsa"])
def test_valid_token_reaches_the_database(
    client: TestClient, forge: Forge, checkouts: list[int], signer: str
) -> None:
    signers: dict[str, Callable[[], str]] = {
        "hs256": forge.hs,
        "rs256": lambda: forge.rsa.sign(forge.claims()),
        "eddsa": lambda: forge.ed.sign(forge.claims()),
    }
    token = signers[signer]()
    before = checkouts[0]

    response = send(client, forge, bearer(token))

    assert response.status_code == 200, response.text
    assert checkouts[0] > before


@pytest.mark.parametrize("space", [b" ", b"\t", b"  \t "])
def test_ascii_spaces_and_tabs_around_the_token_are_allowed(
    client: TestClient, forge: Forge, space: bytes
) -> None:
    assert send(client, forge, _around(forge.hs(), space)).status_code == 200


def test_a_token_signed_over_raw_json_is_accepted(client: TestClient, forge: Forge) -> None:
    """The control for the raw-JSON cases above: only the defect each adds is refused."""
    token = forge.hs_raw(_HS256_HEADER, forge.claims_json())
    assert send(client, forge, bearer(token)).status_code == 200


def test_token_expired_within_the_leeway_is_accepted(client: TestClient, forge: Forge) -> None:
    token = forge.hs(forge.claims(exp=int(time.time()) - LEEWAY // 2))
    assert send(client, forge, bearer(token)).status_code == 200
