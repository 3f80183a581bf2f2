"""Where the rate limits sit in the request path, and the headers that tell clients about them.

Two layers, one on each side of authentication (api/app.py wires them):

- `AddressRateLimit`, before authentication: requests under /api/ that end without a verified
  user (bad or missing tokens, bodies refused before authentication) are charged to the client
  address, and an address whose bucket is empty is refused with 429 before its token is even
  parsed, so junk tokens cannot flood the verifier. Authenticated requests are not charged
  here: users behind one NAT or load balancer do not share a budget.
- `UserRateLimit`, after authentication: every authenticated request takes a token from the
  verified user's bucket; an empty bucket is 429 before routing, so no database connection is
  taken for it.

Every response under /api/ carries `RateLimit-Policy` and `RateLimit` (structured fields of
draft-ietf-httpapi-ratelimit-headers-10); a 429 also carries `Retry-After`. Paths outside /api/
(/healthz, /readyz, /metrics, /docs, /openapi.json) are never limited.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth.caller import caller_of
from api.observability import metrics
from api.paths import API_PREFIX
from api.problems import RateLimited, refuse
from api.ratelimit.buckets import Decision, Policy, RateLimiter


def _headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [
        (b"ratelimit-policy", decision.policy.header().encode()),
        (b"ratelimit", decision.header().encode()),
    ]


def too_many_requests(decision: Decision, who: str) -> RateLimited:
    policy = decision.policy
    headers = {name.decode(): value.decode() for name, value in _headers(decision)}
    headers["Retry-After"] = str(decision.retry_after)
    return RateLimited(
        f"More than {policy.capacity} requests in a burst or {policy.rate:g} per second "
        f"for this {who}; retry after {decision.retry_after} s.",
        headers=headers,
    )


def _with_headers(send: Send, decision: Decision) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *_headers(decision)]
        await send(message)

    return send_with_headers


# A WebSocket handshake is an HTTP request too: it spends the same budgets.
_LIMITED_TYPES = frozenset({"http", "websocket"})
# The messages that answer a request: an HTTP response, a handshake's denial or its close.
_RESPONSE_STARTS = frozenset({"http.response.start", "websocket.http.response.start"})
_ANSWERS = _RESPONSE_STARTS | {"websocket.close"}


def _limited(scope: Scope) -> bool:
    return scope["type"] in _LIMITED_TYPES and str(scope["path"]).startswith(API_PREFIX)


class UserRateLimit:
    """Per-user budget; sits inside BearerAuthentication, which records the verified Caller."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, policy: Policy) -> None:
        self.app = app
        self.limiter = limiter
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        caller = caller_of(scope) if _limited(scope) else None
        if caller is None:
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.take(self.policy, caller.user_id)
        if not decision.allowed:
            metrics.RATE_LIMIT_REJECTIONS.labels(policy=self.policy.name).inc()
            await refuse(too_many_requests(decision, "user"), scope, receive, send)
            return
        await self.app(scope, receive, _with_headers(send, decision))


class AddressRateLimit:
    """Per-address budget for requests that never authenticate; sits outside authentication."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, policy: Policy) -> None:
        self.app = app
        self.limiter = limiter
        self.policy = policy
        # Address -> (monotonic time its bucket has a token again, the refusing decision).
        # Kept per process so the pre-authentication check costs no round trip to Redis.
        self._blocked: dict[str, tuple[float, Decision]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _limited(scope):
            await self.app(scope, receive, send)
            return
        address = scope["client"][0] if scope.get("client") else "unknown"
        blocked = self._blocked.get(address)
        if blocked is not None:
            until, decision = blocked
            if time.monotonic() < until:
                metrics.RATE_LIMIT_REJECTIONS.labels(policy=self.policy.name).inc()
                await refuse(too_many_requests(decision, "address"), scope, receive, send)
                return
            del self._blocked[address]

        async def send_charged(message: Message) -> None:
            if message["type"] in _ANSWERS and caller_of(scope) is None:
                decision = await self.limiter.take(self.policy, address)
                if decision.remaining == 0:
                    self._block(address, decision)
                if message["type"] in _RESPONSE_STARTS:
                    message["headers"] = [*message.get("headers", []), *_headers(decision)]
            await send(message)

        await self.app(scope, receive, send_charged)

    def _block(self, address: str, decision: Decision) -> None:
        if len(self._blocked) > 10_000:
            now = time.monotonic()
            self._blocked = {a: b for a, b in self._blocked.items() if b[0] > now}
        self._blocked[address] = (time.monotonic() + decision.wait_seconds, decision)
