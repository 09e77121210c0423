"""Sessions and tokens that ended, told to every process of a deployment through Redis pub/sub,
so that none keeps acting on what it remembered (`caller_cache.py`): a signed-out cookie stops
working on every backend at once. While this process is not subscribed — Redis unreachable, or
the subscription lost — it is `deaf`, and its cache stays off until it hears again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from docassist.pipelines.logs import event

CHANNEL = "docassist:auth:ended"
RETRY_S = 2.0


class Revocations:
    def __init__(self, redis: Redis, heard: Callable[[str], None], deaf: Callable[[bool], None]) -> None:
        """`heard(what)` for each message ("session:<hash>", "token:<hash>", "person:<id>");
        `deaf(True)` when the subscription is lost, `deaf(False)` once it is back."""
        self.redis, self.heard, self.deaf = redis, heard, deaf
        self._task: asyncio.Task[None] | None = None

    async def tell(self, what: str) -> None:
        """Every process forgets `what`. Redis down: the others are deaf too, and remember nothing."""
        with contextlib.suppress(RedisError, OSError):
            await self.redis.publish(CHANNEL, what)

    def start(self) -> None:
        self.deaf(True)
        self._task = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        """Unsubscribe; a Redis that does not answer the goodbye is not waited for past 5 s."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.deaf(False)
                    while True:  # polled: a quiet channel is not a broken one (listen() would time out)
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                        if message is not None and message.get("type") == "message":
                            data = message["data"]
                            self.heard(data.decode() if isinstance(data, bytes) else str(data))
            except (RedisError, OSError) as exc:
                self.deaf(True)
                event("[AUTH] Not hearing other processes", f"{type(exc).__name__}: {exc}", level=logging.WARNING)
            await asyncio.sleep(RETRY_S)
