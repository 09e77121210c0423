"""What works right now, capability by capability, and whether this instance should be serving.

Capabilities and what each needs:
- `ingest`: the vector store, the database and the embedding model (a server's, with
  `EMBEDDING_KIND=openai`; one in this process is loaded at start).
- `search`: the vector store and the embedding model.
- `summaries`: the database, Redis when `REDIS_URL` is set, and an endpoint for the map and the
  reduce step (the configured one or its failover partner).
- `answers`: the vector store, the embedding model and an endpoint for the answer step.

Each is `ok`, `degraded` (works through a failover partner) or `down`. The service is
`unavailable` — not serving — when the vector store or the database is down, or an LLM endpoint
is stalled (calls would hang rather than fail), so a load balancer takes this instance out and a
supervisor may restart it. An LLM endpoint that is down or restarting, or Redis, leaves the
service `degraded` and serving: ingest and search keep working and the operations that need what
is missing fail at once. So does an embedding server that is gone (every instance shares it, so
taking this one out helps nothing): ingest, search and answers are down, refused at once. A pool
that must have some capabilities names them (`require`): any of them down takes the instance out
of that pool. How this reaches a load balancer (status codes)
is the API's business.

What failed and where (error texts with addresses of servers) is for operators: anyone else gets
the same states and reasons without the details (`HealthReport.without_details`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from docassist.pipelines.llm.endpoints import Endpoint, EndpointHealth
from docassist.pipelines.search.remote_embeddings import EmbeddingHealth
from docassist.pipelines.search.store import StoreHealth
from docassist.pipelines.storage.database import DatabaseHealth
from docassist.pipelines.storage.redis import RedisHealth

State = Literal["ok", "degraded", "down"]
Capability = Literal["ingest", "search", "summaries", "answers"]
CAPABILITIES: tuple[Capability, ...] = ("ingest", "search", "summaries", "answers")


@dataclass
class HealthReport:
    status: Literal["ok", "degraded", "unavailable"]
    capabilities: dict[Capability, State]
    vector_store: StoreHealth
    database: DatabaseHealth
    redis: RedisHealth | None
    llm: dict[str, EndpointHealth]
    reasons: list[str] = field(default_factory=list)
    embedding: EmbeddingHealth | None = None

    def serving(self, require: tuple[Capability, ...] = ()) -> bool:
        """Whether a load balancer should send this instance work: not while it is `unavailable`,
        nor while a capability the pool requires is down."""
        return self.status != "unavailable" and all(self.capabilities[c] != "down" for c in require)

    def without_details(self) -> HealthReport:
        """The same states, with no error text: error texts name hosts, ports and paths."""
        store, database = replace(self.vector_store, error=None), replace(self.database, error=None)
        redis = replace(self.redis, error=None) if self.redis else None
        llm = {name: replace(h, error=None) for name, h in self.llm.items()}
        embedding = replace(self.embedding, error=None, server=None) if self.embedding else None
        return replace(
            self,
            vector_store=store,
            database=database,
            redis=redis,
            llm=llm,
            reasons=_reasons(store, database, redis, llm, embedding),
            embedding=embedding,
        )


def _reasons(
    store: StoreHealth,
    database: DatabaseHealth,
    redis: RedisHealth | None,
    llm: dict[str, EndpointHealth],
    embedding: EmbeddingHealth | None = None,
) -> list[str]:
    def detail(error: str | None) -> str:
        return f": {error}" if error else ""

    reasons = []
    if not store.ok:
        reasons.append(f"vector store is down{detail(store.error)}")
    if not database.ok:
        reasons.append(f"database is down{detail(database.error)}")
    if redis is not None and not redis.ok:
        reasons.append(f"Redis is down{detail(redis.error)}")
    if embedding is not None and not embedding.ok:
        reasons.append(f"embedding server ({embedding.model}) is down{detail(embedding.error)}")
    for state in ("stalled", "down"):
        for name, h in llm.items():
            if h.state == state:
                reasons.append(f"LLM endpoint '{name}' is {state}{detail(h.error)}")
    return reasons


def _route_state(endpoint: Endpoint, llm: dict[str, EndpointHealth]) -> State:
    if llm[endpoint.name].ok:
        return "ok"
    partner = endpoint.fallback
    if partner is not None and llm[partner.name].ok:
        return "degraded"
    return "down"


def assess(
    store: StoreHealth,
    database: DatabaseHealth,
    redis: RedisHealth | None,
    llm: dict[str, EndpointHealth],
    routing: dict[str, Endpoint],
    embedding: EmbeddingHealth | None = None,
) -> HealthReport:
    """Fold the checks into capabilities and an overall status (see the module's docstring)."""
    store_state: State = "ok" if store.ok else "down"
    db_state: State = "ok" if database.ok else "down"
    redis_state: State = "ok" if redis is None or redis.ok else "down"
    embed_state: State = "ok" if embedding is None or embedding.ok else "down"
    route = {step: _route_state(ep, llm) for step, ep in routing.items()}
    worst = {"ok": 0, "degraded": 1, "down": 2}

    def combine(*states: State) -> State:
        return max(states, key=lambda s: worst[s])

    capabilities: dict[Capability, State] = {
        "ingest": combine(store_state, db_state, embed_state),
        "search": combine(store_state, embed_state),
        "summaries": combine(db_state, redis_state, route["map"], route["reduce"]),
        "answers": combine(store_state, embed_state, route["answer"]),
    }
    stalled = [name for name, h in llm.items() if h.state == "stalled"]
    if not store.ok or not database.ok or stalled:
        status: Literal["ok", "degraded", "unavailable"] = "unavailable"
    elif all(s == "ok" for s in capabilities.values()):
        status = "ok"
    else:
        status = "degraded"
    reasons = _reasons(store, database, redis, llm, embedding)
    return HealthReport(status, capabilities, store, database, redis, llm, reasons, embedding)
