"""One streamed call whose text must be in a given language: the final pass of a summary and an
answer both stream it, check the language of what came back, and ask once more — with the
prompt's strict form — when it is another. The retry's first delta says `reset`, so a reader
drops what the first attempt streamed."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable

from docassist.pipelines import metrics
from docassist.pipelines.language import detect_language
from docassist.pipelines.llm.caller import Completion, LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.llm.prompts import Prompt
from docassist.pipelines.llm.repetition import Restart
from docassist.pipelines.logs import event

MIN_CHECKED_CHARS = 20  # shorter texts say too little for their language to be told


async def stream_in_language(
    caller: LLMCaller,
    endpoint: Endpoint,
    prompt: Callable[[bool], Prompt],
    language: str,
    purpose: str,
    max_output: int,
    emit: Callable[[str, bool], Awaitable[None] | None],
    record: Callable[[Completion], Awaitable[None]],
) -> tuple[str, bool]:
    """The text of the call `prompt(strict)` asks for, each delta passed to `emit(delta, reset)`
    (awaited when it returns an awaitable) and each finished call to `record`; and whether it had
    to be asked again."""
    text = ""
    for strict in (False, True):
        final: Completion | None = None
        first = True
        async for item in caller.stream(endpoint, prompt(strict), purpose=purpose, max_output=max_output):
            if isinstance(item, Completion):
                final = item
            else:
                # a retry in the question's language, or after a loop (`Restart`), starts the text over
                sent = emit(item, (strict and first) or isinstance(item, Restart))
                if inspect.isawaitable(sent):  # an answer checks each sentence before it is sent
                    await sent
                first = False
        assert final is not None
        await record(final)
        text = final.text
        got = detect_language(text).code if text else language
        if got == language or len(text) < MIN_CHECKED_CHARS:
            return text, strict
        if not strict:
            metrics.language_retry(purpose)
            event(
                "[Language Check] Wrong language, retrying once",
                f"expected {language}, got {got}",
                level=logging.WARNING,
                expected=language,
                got=got,
            )
    return text, True
