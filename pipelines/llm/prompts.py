"""Prompts: the versioned templates in `prompts/`, rendered for one task, style and language.

A `Prompt` is what one LLM call sends: `user` text and an optional `system` instruction.
Chat models get two messages; completion-style (base) models get one text that ends in a
cue and the first words of the answer (the `primer`), which is part of the returned text.

The prompt version is part of every summary cache key, so editing a template means bumping
`PROMPT_VERSION` (or adding `prompts/v2.toml`) and old summaries are not served as new. The
version is a setting (`Settings.prompt_version`), made this process's with `use_version` at start.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from typing import Literal

from llama_index.core.llms import ChatMessage, MessageRole

from docassist.pipelines.environment import ConfigError
from docassist.pipelines.language import NAMES

_version = ["v1"]  # the process's prompt version, set once at start from Settings


def use_version(version: str) -> None:
    """Make `version` the templates every prompt of this process is rendered from; a version
    without its file stops the start (`ConfigError`), not the first summary."""
    try:
        templates(version)
    except FileNotFoundError as exc:
        raise ConfigError("environment", "PROMPT_VERSION", f"no prompts/{version}.toml") from exc
    _version[0] = version


def prompt_version() -> str:
    return _version[0]


Task = Literal["summarize", "map", "reduce", "focus", "answer", "condense", "verify"]
Style = Literal["chat", "completion"]


@dataclass
class Prompt:
    """What to send: `user` text plus an optional `system` instruction."""

    user: str
    system: str | None = None
    primer: str = ""  # completion form: the answer's first words, already at the end of `user`
    stop: list[str] = field(default_factory=list)

    def as_text(self) -> str:
        return f"{self.system}\n\n{self.user}" if self.system else self.user

    def as_messages(self) -> list[ChatMessage]:
        msgs = [ChatMessage(role=MessageRole.SYSTEM, content=self.system)] if self.system else []
        return [*msgs, ChatMessage(role=MessageRole.USER, content=self.user)]


def templates(version: str | None = None) -> dict:
    """The templates of `version` (the process's by default), with `fingerprint`: the SHA-256 of
    their file (part of cache keys)."""
    return _templates(version or _version[0])


def reload() -> None:
    """Read the templates from their folder again at the next render (the prompt lab swaps folders)."""
    _templates.cache_clear()


@lru_cache(maxsize=8)
def _templates(version: str) -> dict:
    folder = os.environ.get("DOCASSIST_PROMPTS_DIR") or str(files("docassist.prompts"))
    with open(os.path.join(folder, f"{version}.toml"), "rb") as fh:
        raw = fh.read()
    return {**tomllib.loads(raw.decode("utf-8")), "fingerprint": hashlib.sha256(raw).hexdigest()}


def language_slots(language: str, version: str | None = None) -> dict[str, str]:
    english, native = NAMES.get(language, (language, language))
    slots = {"language": english, "language_native": native}
    cues = templates(version)["cues"]
    for key, value in cues.get(language, cues["default"]).items():
        slots[key] = value.format(**slots)
    return slots


def render(
    task: Task,
    style: Style,
    language: str,
    *,
    strict: bool = False,
    version: str | None = None,
    instructions: Literal["system", "user"] = "system",
    **slots: str | int,
) -> Prompt:
    """The prompt for `task`, with the target language filled in everywhere it appears. A chat
    model whose `instructions` go in the user message gets them at the top of it, not as a
    system message."""
    t = templates(version)
    values: dict[str, str | int] = {**language_slots(language, version), **slots}
    if not strict:
        values["strict"] = ""
    elif style == "chat":
        values["strict"] = t["strict"]["chat"]["line"].format(**values)
    history = str(values.get("history", ""))
    values["earlier"] = t["earlier"][style]["block"].format(**values) if history.strip() else ""
    form = t[task][style]
    if style == "chat":
        system, user = form["system"].format(**values), form["user"].format(**values)
        if instructions == "user":
            return Prompt(user=f"{system}\n\n{user}")
        return Prompt(user=user, system=system)
    return Prompt(
        user=form["text"].format(**values).rstrip(),
        primer=form.get("primer", "").format(**values),
        stop=[*t["completion"]["stop"], *(s.format(**values) for s in form.get("stop", []))],
    )
