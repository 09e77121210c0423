"""Single-flight runs across processes, through Redis: one run per summary however many backends
ask for it, and every event of it for a follower on any backend (the `FlightBoard` of `board.py`).

- The process that claims `flight:<key>` (SET NX with a lease it renews) runs the summary and
  appends each event to the stream `flight:<key>:<run>:events`.
- Any other process follows the run: it reads the stream from its first entry (so a late
  follower still sees `start` and every step), then blocks for new ones until `complete` or
  `error`.
- Followers register with an expiry they renew; the owner cancels a run nobody follows any more
  (a disconnected client stops its LLM work wherever the run is). A background job is a
  follower like any other.
- When an owner dies, its lease runs out; a follower notices and takes the run over, and the
  new run resumes from the memoised partial results in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from docassist.pipelines.errors import StoreUnavailable
from docassist.pipelines.logs import event
from docassist.pipelines.streams import StreamEvent, encode
from docassist.pipelines.summaries.events import decode
from docassist.pipelines.summaries.runs.board import Elsewhere, Owned, OwnerGone, counted
from docassist.pipelines.summaries.runs.flights import Flight, RemoteFlight

OWNER_TTL_MS = 15_000
FOLLOWER_TTL_MS = 10_000
EVENTS_TTL_S = 3_600
DONE_TTL_S = 120
BLOCK_MS = 1_000
WATCH_INTERVAL_S = 2.0

_RENEW_OWNER = """
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v)['run'] == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_OWNER = """
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v)['run'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def redis_errors_as_503(exc: RedisError) -> StoreUnavailable:
    return StoreUnavailable(f"Redis is unavailable: {exc}")


class SharedFlightBoard:
    """The `FlightBoard` of processes that share a Redis: one run per key among all of them."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._renew_script = redis.register_script(_RENEW_OWNER)
        self._release_script = redis.register_script(_RELEASE_OWNER)

    @staticmethod
    def _owner_key(key: str) -> str:
        return f"docassist:flight:{key}"

    @staticmethod
    def _events_key(key: str, run: str) -> str:
        return f"docassist:flight:{key}:{run}:events"

    @staticmethod
    def _followers_key(key: str, run: str) -> str:
        return f"docassist:flight:{key}:{run}:followers"

    async def claim(self, key: str) -> Owned | Elsewhere:
        """A new run of this process, or the run of the process that owns the key; when that one
        finished between the two questions, a second claim."""
        run = await self._take(key)
        if run is None:
            current = await self.current(key)
            if current is not None:
                return Elsewhere(current)
            run = await self._take(key)  # its owner finished meanwhile
            if run is None:
                current = await self.current(key)
                return Elsewhere(current or "")
        return Owned(run, contested=True)

    async def _take(self, key: str) -> str | None:
        """The new run's id when this process now owns the flight; None when another process does."""
        run = uuid.uuid4().hex[:12]
        try:
            won = await self.redis.set(
                self._owner_key(key), json.dumps({"owner": self.owner, "run": run}), nx=True, px=OWNER_TTL_MS
            )
        except RedisError as exc:
            raise redis_errors_as_503(exc) from exc
        return run if won else None

    async def current(self, key: str) -> str | None:
        """The id of the run that owns the flight now, or None."""
        try:
            value = await self.redis.get(self._owner_key(key))
        except RedisError as exc:
            raise redis_errors_as_503(exc) from exc
        return json.loads(value)["run"] if value else None

    async def renew(self, key: str, run: str) -> bool:
        try:
            return bool(await self._renew_script(keys=[self._owner_key(key)], args=[run, OWNER_TTL_MS]))
        except RedisError:
            return True  # a short outage: the lease is longer than one renewal period

    async def release(self, key: str, run: str | None) -> None:
        if run is None:
            return
        with contextlib.suppress(RedisError):
            await self._release_script(keys=[self._owner_key(key)], args=[run])

    async def publish(self, key: str, run: str, ev: StreamEvent) -> None:
        stream = self._events_key(key, run)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(stream, encode(ev))
            pipe.expire(stream, DONE_TTL_S if ev.terminal else EVENTS_TTL_S)
            await pipe.execute()

    def launch(self, flight: Flight) -> None:
        """Relay the flight's events to its stream in Redis from its first one."""
        flight.outbox = asyncio.Queue()
        flight.publisher = asyncio.create_task(self._publish(flight), name=f"publish-{flight.key[:8]}")

    async def _publish(self, flight: Flight) -> None:
        """Relay a run's events to its stream in Redis, in order; release the flight after the last."""
        assert flight.outbox is not None and flight.run is not None
        while True:
            ev = await flight.outbox.get()
            with contextlib.suppress(Exception):  # a follower elsewhere then sees the owner's lease lapse
                await self.publish(flight.key, flight.run, ev)
            if ev.terminal:
                await self.release(flight.key, flight.run)
                return

    async def watch(self, flight: Flight, document_exists: Callable[[], Awaitable[bool]]) -> None:
        """Renew the run's lease, and stop a run whose document was deleted or that nobody, in any
        process, follows any more."""
        assert flight.run is not None
        unfollowed = 0
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            await self.renew(flight.key, flight.run)
            gone = not await document_exists()
            unfollowed = unfollowed + 1 if await self.followers(flight.key, flight.run) == 0 else 0
            if gone or unfollowed >= 2:
                event(
                    "[SUMMARY] Stopping",
                    f"doc_id={flight.doc_id}: "
                    + ("the document was deleted" if gone else "nobody follows the run any more"),
                )
                flight.cancel()
                return

    async def events(self, flight: RemoteFlight) -> AsyncIterator[StreamEvent]:
        """Every event of the run from its first, then each new one, until `complete` or `error`;
        `OwnerGone` when the owner's lease lapses first."""
        key, run = flight.key, flight.run
        stream, last = self._events_key(key, run), "0"
        while True:
            try:
                batches = await self.redis.xread({stream: last}, count=100, block=BLOCK_MS)
            except RedisError as exc:
                raise redis_errors_as_503(exc) from exc
            for _, entries in batches:
                for entry_id, fields in entries:
                    last = entry_id
                    ev = decode(_text(fields[b"event"]), _text(fields[b"data"]))
                    yield ev
                    if ev.terminal:
                        return
            if not batches and await self.current(key) != run:
                raise OwnerGone(key)

    def following(self, flight: Flight | RemoteFlight) -> contextlib.AbstractAsyncContextManager[None]:
        """A run on the board: count as its follower in Redis; a cached flight, which has no run
        there, is followed here alone."""
        if flight.run is None:
            assert isinstance(flight, Flight)
            return counted(flight)
        return self._following(flight.key, flight.run)

    @contextlib.asynccontextmanager
    async def _following(self, key: str, run: str) -> AsyncIterator[None]:
        """Count as a follower of the run (renewed) while the block runs."""
        token, zkey = uuid.uuid4().hex, self._followers_key(key, run)

        async def keep() -> None:
            while True:
                with contextlib.suppress(RedisError):
                    async with self.redis.pipeline(transaction=False) as pipe:
                        pipe.zadd(zkey, {token: _now_ms() + FOLLOWER_TTL_MS})
                        pipe.expire(zkey, EVENTS_TTL_S)
                        await pipe.execute()
                await asyncio.sleep(FOLLOWER_TTL_MS / 3000)

        keeper = asyncio.create_task(keep())
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(RedisError):
                await asyncio.shield(self.redis.zrem(zkey, token))

    async def followers(self, key: str, run: str) -> int:
        zkey = self._followers_key(key, run)
        try:
            await self.redis.zremrangebyscore(zkey, "-inf", _now_ms())
            return int(await self.redis.zcard(zkey))
        except RedisError:
            return 1  # cannot tell: keep the run


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
