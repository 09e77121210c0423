"""The Redis connection of a deployment (`REDIS_URL`): job queue, single-flight runs and LLM
slots shared across processes. Short timeouts, so an outage answers 503 instead of hanging."""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError


def connect(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=15)


@dataclass
class RedisHealth:
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


async def health(redis: Redis) -> RedisHealth:
    started = time.perf_counter()
    try:
        await redis.ping()
    except RedisError as exc:
        return RedisHealth(False, error=f"{type(exc).__name__}: {exc}")
    return RedisHealth(True, latency_ms=round((time.perf_counter() - started) * 1000, 1))
