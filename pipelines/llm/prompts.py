"""Render the versioned templates in `prompts/` into `Prompt`s for one task, style and language.

The prompt version is part of every summary cache key, so editing a template means bumping
`PROMPT_VERSION` (or adding `prompts/v2.toml`) and old summaries are not served as new.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from importlib.resources import files
from typing import Literal

from docassist.pipelines.documents.language import NAMES
from docassist.pipelines.llm.caller import Prompt

PROMPT_VERSION = os.environ.get("PROMPT_VERSION", "v1")
Task = Literal["summarize", "map", "reduce", "focus", "answer"]


@lru_cache(maxsize=8)
def templates(version: str = PROMPT_VERSION) -> dict:
    override = os.environ.get("DOCASSIST_PROMPTS_DIR")
    path = (
        os.path.join(override, f"{version}.toml")
        if override
        else str(files("docassist.prompts").joinpath(f"{version}.toml"))
    )
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def language_slots(language: str, version: str = PROMPT_VERSION) -> dict[str, str]:
    english, native = NAMES.get(language, (language, language))
    slots = {"language": english, "language_native": native}
    cues = templates(version)["cues"]
    for key, value in cues.get(language, cues["default"]).items():
        slots[key] = value.format(**slots)
    return slots


def render(
    task: Task,
    style: Literal["chat", "completion"],
    language: str,
    *,
    strict: bool = False,
    version: str = PROMPT_VERSION,
    **slots: str | int,
) -> Prompt:
    """The prompt for `task`, with the target language filled in everywhere it appears."""
    t = templates(version)
    values: dict[str, str | int] = {**language_slots(language, version), **slots}
    if not strict:
        values["strict"] = ""
    elif style == "chat":
        values["strict"] = t["strict"]["chat"]["line"].format(**values)
    form = t[task][style]
    if style == "chat":
        return Prompt(user=form["user"].format(**values), system=form["system"].format(**values))
    return Prompt(
        user=form["text"].format(**values).rstrip(),
        primer=form.get("primer", "").format(**values),
        stop=[*t["completion"]["stop"], *(s.format(**values) for s in form.get("stop", []))],
    )
