"""An endpoint's concurrency limit shared by every process of a deployment, through Redis.

The same contract as `scheduling.PrioritySemaphore` — at most `capacity` calls at once, and an
interactive call waiting for a slot goes before every background call waiting for it — but the
holders and the queue live in Redis, so two backends and a worker together never send an
endpoint more calls than it takes, and a user's question overtakes the background summaries of
all of them. Holders and waiters carry expiries that they renew: a process that dies frees its
slots and its places in the queue within seconds. One Lua script decides, on Redis' clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from docassist.pipelines.errors import StoreUnavailable
from docassist.pipelines.llm.scheduling import current_priority

HOLD_TTL_MS = 15_000  # a holder renews every third of this while its call runs
WAIT_TTL_MS = 5_000  # a waiter renews on every poll
POLL_S = 0.05

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, w in ipairs(dead) do
  redis.call('ZREM', KEYS[2], w)
  redis.call('ZREM', KEYS[3], w)
end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[6]) * 1e13 + now, ARGV[1])
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[1])
local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1])
if free <= 0 then return 0 end
local rank = redis.call('ZRANK', KEYS[2], ARGV[1])
if rank and rank < free then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
  return 1
end
return 0
"""
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
"""


def server_identity(base_url: str) -> str:
    """The same server for every process that calls it: its URL, with the host name in front for
    a loopback URL (each machine's own llama.cpp is a different server)."""
    host = urlsplit(base_url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return f"{socket.gethostname()}/{base_url}"
    return base_url


class SharedSlots:
    """Drop-in for `PrioritySemaphore` across processes: `async with slots.slot(): ...`."""

    def __init__(self, redis: Redis, server: str, capacity: int) -> None:
        """`server`: what identifies the LLM server across processes (see `server_identity`)."""
        self.redis, self.capacity = redis, capacity
        base = f"docassist:slots:{server}"
        self.keys = [f"{base}:holders", f"{base}:waiters", f"{base}:waiters:alive"]
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._prefix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._ids = itertools.count()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        token = f"{self._prefix}-{next(self._ids)}"
        try:
            while not await self._acquire(
                keys=self.keys, args=[token, self.capacity, 0, HOLD_TTL_MS, WAIT_TTL_MS, current_priority()]
            ):
                await asyncio.sleep(POLL_S)
        except RedisError as exc:
            raise StoreUnavailable(f"Redis is unavailable: {exc}") from exc
        except asyncio.CancelledError:
            with contextlib.suppress(RedisError):
                await asyncio.shield(self._leave(token))
            raise
        renewer = asyncio.create_task(self._keep(token))
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(RedisError):
                await asyncio.shield(self._leave(token))

    async def _keep(self, token: str) -> None:
        while True:
            await asyncio.sleep(HOLD_TTL_MS / 3000)
            with contextlib.suppress(RedisError):
                await self._renew(keys=[self.keys[0]], args=[token, HOLD_TTL_MS])

    async def _leave(self, token: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self.keys:
                pipe.zrem(key, token)
            await pipe.execute()
