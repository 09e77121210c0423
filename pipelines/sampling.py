"""Sampling against repetition, as a model's entry in `config/llm_models.json` sets it.

Two sets per model (`repetition`): `call`, sent with every call, and `retry`, sent when a call
wrote a sentence a third time and is asked once more (`llm/repetition.py`). A value left out is
not sent, so the server keeps its own default. Each backend (`llm/backends.py`) sends what its
server has under that server's name: llama.cpp's repeat_penalty, repeat_last_n and DRY sampler,
vLLM's repetition_penalty, Ollama's repeat_penalty and repeat_last_n options; OpenAI's
frequency_penalty goes to all of them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Sampling(BaseModel):
    """Penalties one call is sent with; None: the server's default."""

    model_config = ConfigDict(extra="forbid")

    repeat_penalty: float | None = Field(
        default=None, ge=1.0, le=2.0, description="llama.cpp and Ollama repeat_penalty, vLLM repetition_penalty"
    )
    repeat_last_n: int | None = Field(
        default=None, ge=-1, description="tokens the repeat penalty looks back over (llama.cpp, Ollama; -1: all)"
    )
    frequency_penalty: float | None = Field(default=None, ge=0.0, le=2.0, description="OpenAI's, every backend")
    dry_multiplier: float | None = Field(default=None, ge=0.0, description="llama.cpp's DRY sampler (0: off)")
    dry_base: float | None = Field(default=None, ge=1.0)
    dry_allowed_length: int | None = Field(default=None, ge=1)

    def given(self) -> dict[str, float | int]:
        """The values set, by their names here."""
        return self.model_dump(exclude_none=True)


class RepetitionGuard(BaseModel):
    """What every call is sent (`call`), and the stronger set a call that looped is asked again
    with (`retry`): a model without an entry gets a moderate repeat penalty on its retry only."""

    model_config = ConfigDict(extra="forbid")

    call: Sampling = Field(default_factory=Sampling)
    retry: Sampling = Field(default_factory=lambda: Sampling(repeat_penalty=1.15))
