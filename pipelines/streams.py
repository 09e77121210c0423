"""Events a client receives as server-sent events: each is a LlamaIndex workflow `Event` (a pydantic
model) with the name it goes out under. Workflows write them, flights and jobs relay them, the
stream routes send them (`api/schemas.py` describes each stream in OpenAPI from them)."""

from __future__ import annotations

from typing import ClassVar

from workflows.events import Event


class StreamEvent(Event):
    name: ClassVar[str]
    terminal: ClassVar[bool] = False


def encode(ev: StreamEvent) -> dict[str, str]:
    """`{"event": name, "data": json}`: the server-sent event, and the form a shared flight stores."""
    return {"event": ev.name, "data": ev.model_dump_json()}
