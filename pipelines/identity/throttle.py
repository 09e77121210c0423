"""Failed sign-ins counted per username and per client address over the last minute: past
`LIMIT`, further attempts from either are refused (429, `SignInThrottled`) until the oldest
failure leaves the window, before the directory is asked. The refusal is the same whether the
username exists or not. With Redis the counts are shared by every backend; without, each process
counts its own (one process serves a laptop install)."""

from __future__ import annotations

import math
import secrets
import time
from collections import deque

from redis.asyncio import Redis
from redis.exceptions import RedisError

from docassist.pipelines.errors import SignInThrottled

LIMIT = 5
WINDOW_S = 60.0
MAX_TRACKED = 10_000


def _keys(username: str, client: str | None) -> list[str]:
    keys = ["user:" + username.strip().casefold()[:256]]
    if client:
        keys.append("client:" + client)
    return keys


def _refusal(wait_s: float) -> SignInThrottled:
    wait = max(1, math.ceil(wait_s))
    return SignInThrottled(
        f"too many failed sign-ins for this username or from this address; try again in {wait}s",
        retry_after_s=wait,
    )


class SignInThrottle:
    def __init__(self, redis: Redis | None = None) -> None:
        self.redis = redis
        self._failures: dict[str, deque[float]] = {}

    async def check(self, username: str, client: str | None) -> None:
        """`SignInThrottled` when the username or the address used up its failures."""
        if self.redis is not None:
            try:
                await self._check_shared(_keys(username, client))
                return
            except RedisError:
                pass  # Redis down: this process's own counts still hold the line
        now = time.monotonic()
        for key in _keys(username, client):
            window = self._window(key, now)
            if len(window) >= LIMIT:
                raise _refusal(window[0] + WINDOW_S - now)

    async def failed(self, username: str, client: str | None) -> None:
        now = time.monotonic()
        if len(self._failures) > MAX_TRACKED:  # a spray of usernames: forget the windows that ended
            for key in list(self._failures):
                self._window(key, now)
        for key in _keys(username, client):
            window = self._window(key, now)
            window.append(now)
            self._failures[key] = window
        if self.redis is not None:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key in _keys(username, client):
                        name = "docassist:signin:" + key
                        pipe.zadd(name, {secrets.token_hex(8): time.time()})
                        pipe.expire(name, int(WINDOW_S) + 1)
                    await pipe.execute()
            except RedisError:
                pass

    def _window(self, key: str, now: float) -> deque[float]:
        """The key's failures still in the window (an empty one is not kept)."""
        window = self._failures.get(key, deque())
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        if not window:
            self._failures.pop(key, None)
        return window

    async def _check_shared(self, keys: list[str]) -> None:
        now = time.time()
        for key in keys:
            name = "docassist:signin:" + key
            await self.redis.zremrangebyscore(name, 0, now - WINDOW_S)  # type: ignore[union-attr]
            oldest = await self.redis.zrange(name, 0, LIMIT - 1, withscores=True)  # type: ignore[union-attr]
            if len(oldest) >= LIMIT:
                raise _refusal(oldest[0][1] + WINDOW_S - now)
