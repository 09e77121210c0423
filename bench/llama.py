"""Straight to the service's own llama.cpp server: the baseline with no pipeline in between.

Requests are the very bodies the service sent (bench/capture.py). llama-cpp-python reuses the KV
cache of the longest prefix the previous prompt shares, so a prompt timed right after the same
prompt would skip its prefill: `flush()` evaluates an unrelated one-token prompt before every
timed run, on both sides of a comparison.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx

from docassist.bench.capture import Request


@dataclass
class Timed:
    seconds: float
    text: str
    first_token_s: float | None = None


class LlamaDirect:
    def __init__(self, base_url: str, model: str, api_key: str) -> None:
        self.base_url, self.model = base_url.rstrip("/"), model
        self.root = self.base_url.removesuffix("/v1")
        self.http = httpx.Client(timeout=1800, headers={"Authorization": f"Bearer {api_key}"})

    def close(self) -> None:
        self.http.close()

    def flush(self) -> None:
        """Replace the server's cached prompt prefix with an unrelated one (see module doc)."""
        self.http.post(
            f"{self.base_url}/completions",
            json={"model": self.model, "prompt": "Flush.", "max_tokens": 1, "temperature": 0.0},
        ).raise_for_status()

    def count(self, text: str) -> int:
        r = self.http.post(f"{self.root}/extras/tokenize/count", json={"input": text})
        r.raise_for_status()
        return int(r.json()["count"])

    def send(self, request: Request, first_token_only: bool = False) -> Timed:
        """Send one captured request; for streams, also the time to the first generated text."""
        started = time.perf_counter()
        if not request.stream:
            r = self.http.post(request.url, json=request.body)
            r.raise_for_status()
            return Timed(time.perf_counter() - started, r.json()["choices"][0]["text"])
        parts: list[str] = []
        first: float | None = None
        with self.http.stream("POST", request.url, json=request.body) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                choices = json.loads(line[5:]).get("choices") or [{}]
                delta = choices[0].get("text") or ""
                if delta and first is None:
                    first = time.perf_counter() - started
                    if first_token_only:
                        break
                parts.append(delta)
        return Timed(time.perf_counter() - started, "".join(parts), first)

    def replay(self, requests: list[Request]) -> tuple[float, list[str]]:
        """All requests one after another, as the service's single llama.cpp slot runs them."""
        started = time.perf_counter()
        texts = [self.send(r).text for r in requests]
        return time.perf_counter() - started, texts

    def wait_idle(self, timeout_s: float = 600) -> None:
        """Return once the server takes requests again (its lock is free: nothing generating)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.count("idle?")
                return
            except httpx.HTTPError:
                time.sleep(0.2)
