"""Token buckets: how many requests a user (or an unauthenticated address) may make, and when.

A bucket holds up to `capacity` tokens and refills at `rate` tokens per second; a request takes
one. `capacity` is `rate * RATE_LIMIT_BURST_SECONDS`, so a client that was quiet may send a
short burst and is then held to the sustained rate.

With REDIS_URL set, every worker and instance shares the buckets: one Lua script reads, refills
and takes from a bucket atomically, using Redis's clock so hosts with skewed clocks agree.
Without it, each process keeps its own buckets. Redis trouble never refuses a request: the
limiter falls back to the per-process buckets (fail open with respect to the shared budget),
logs the outage once, counts every failed call, and tries Redis again after a short pause.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from api.observability import metrics
from api.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    """One limit as clients see it in `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers)."""

    name: str
    rate: float
    capacity: int

    @classmethod
    def from_rate(cls, name: str, rate: float, burst_seconds: int) -> Policy:
        return cls(name, rate, max(1, round(rate * burst_seconds)))

    @property
    def window(self) -> int:
        """Seconds an empty bucket takes to fill: `q` per `w` seconds is the sustained rate."""
        return max(1, math.ceil(self.capacity / self.rate))

    def header(self) -> str:
        return f'"{self.name}";q={self.capacity};w={self.window}'


@dataclass(frozen=True)
class Decision:
    allowed: bool
    tokens: float
    policy: Policy

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.tokens))

    @property
    def reset(self) -> int:
        """Seconds until the bucket is full again (the draft's `t`)."""
        return max(0, math.ceil((self.policy.capacity - self.tokens) / self.policy.rate))

    @property
    def wait_seconds(self) -> float:
        """Seconds until one token is back (0 when one is there now)."""
        return max(0.0, (1 - self.tokens) / self.policy.rate)

    @property
    def retry_after(self) -> int:
        """Whole seconds until one token is back; never 0, so a client always waits a little."""
        return max(1, math.ceil(self.wait_seconds))

    def header(self) -> str:
        return f'"{self.policy.name}";r={self.remaining};t={self.reset}'


class Buckets(Protocol):
    async def take(self, policy: Policy, key: str) -> Decision: ...

    async def aclose(self) -> None: ...


class LocalBuckets:
    """This process's buckets. Memory stays bounded: full buckets are forgotten first."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._state: dict[tuple[str, str], tuple[float, float]] = {}
        self._max_keys = max_keys

    async def take(self, policy: Policy, key: str) -> Decision:
        return self.take_now(policy, key)

    def take_now(self, policy: Policy, key: str) -> Decision:
        now = time.monotonic()
        slot = (policy.name, key)
        tokens, stamp = self._state.get(slot, (float(policy.capacity), now))
        tokens = min(float(policy.capacity), tokens + (now - stamp) * policy.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if slot not in self._state and len(self._state) >= self._max_keys:
            self._evict(now, policy)
        self._state[slot] = (tokens, now)
        return Decision(allowed, tokens, policy)

    def _evict(self, now: float, policy: Policy) -> None:
        # A bucket idle long enough to be full again carries no information: drop those first,
        # then the oldest half (forgetting a bucket only ever errs towards letting a request in).
        idle = policy.capacity / policy.rate
        for slot in [s for s, (_, stamp) in self._state.items() if now - stamp >= idle]:
            del self._state[slot]
        if len(self._state) >= self._max_keys:
            for slot in list(self._state)[: len(self._state) // 2]:
                del self._state[slot]

    async def aclose(self) -> None:
        self._state.clear()


# KEYS[1]: the bucket. ARGV: rate (tokens/s), capacity. Returns {allowed, tokens as a string}
# (a Lua number returned to Redis is truncated to an integer, so the fraction travels as text).
TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisBuckets:
    """Buckets shared by every process that points at the same Redis and key prefix."""

    def __init__(self, url: str, *, prefix: str, timeout_seconds: float) -> None:
        self._redis: Redis = Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            # One attempt: redis-py would otherwise retry with backoff while the request waits;
            # the limiter's own pause (RATE_LIMIT_REDIS_RETRY_SECONDS) is the retry policy.
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self._redis.register_script(TAKE_SCRIPT)
        self._prefix = prefix

    async def take(self, policy: Policy, key: str) -> Decision:
        result = await self._script(
            keys=[f"{self._prefix}{policy.name}:{key}"], args=[policy.rate, policy.capacity]
        )
        allowed, tokens = result
        return Decision(bool(int(allowed)), float(tokens), policy)

    async def aclose(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    """Shared buckets when configured, with this process's buckets as the fail-open fallback."""

    def __init__(self, shared: RedisBuckets | None, *, retry_seconds: float = 1.0) -> None:
        self._shared = shared
        self._local = LocalBuckets()
        self._retry_seconds = retry_seconds
        self._shared_down_until = 0.0

    @property
    def shared(self) -> bool:
        return self._shared is not None

    async def take(self, policy: Policy, key: str) -> Decision:
        if self._shared is not None and time.monotonic() >= self._shared_down_until:
            try:
                decision = await self._shared.take(policy, key)
            except (RedisError, OSError) as exc:
                self._on_shared_failure(exc)
            else:
                if self._shared_down_until:
                    self._shared_down_until = 0.0
                    log.warning("rate limit: Redis reachable again; budgets are shared again")
                return decision
        if self._shared is not None:
            metrics.RATE_LIMIT_DEGRADED.inc()
        return self._local.take_now(policy, key)

    def _on_shared_failure(self, exc: BaseException) -> None:
        metrics.REDIS_ERRORS.labels(error=type(exc).__name__).inc()
        if not self._shared_down_until:
            log.warning(
                "rate limit: Redis unavailable (%s: %s); failing open to per-process buckets, "
                "retrying every %.1fs",
                type(exc).__name__,
                exc,
                self._retry_seconds,
            )
        self._shared_down_until = time.monotonic() + self._retry_seconds

    async def aclose(self) -> None:
        if self._shared is not None:
            await self._shared.aclose()


@dataclass(frozen=True)
class RateLimits:
    """The configured policies (None when off) and the limiter that enforces them."""

    limiter: RateLimiter
    user: Policy | None
    address: Policy | None

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        user_rate, address_rate = settings.rate_per_second, settings.address_rate_per_second
        burst = settings.rate_limit_burst_seconds
        shared = None
        if settings.redis_url and (user_rate or address_rate):
            shared = RedisBuckets(
                settings.redis_url,
                prefix=settings.rate_limit_redis_prefix,
                timeout_seconds=settings.rate_limit_redis_timeout_seconds,
            )
        return cls(
            RateLimiter(shared, retry_seconds=settings.rate_limit_redis_retry_seconds),
            Policy.from_rate("per-user", user_rate, burst) if user_rate else None,
            Policy.from_rate("per-address", address_rate, burst) if address_rate else None,
        )
