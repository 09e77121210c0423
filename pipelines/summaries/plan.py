"""The plan of a summary: one direct call, or a tree of map parts — decided once, by one function.

`decide` takes token sizes and returns the plan; where the sizes come from is the only
difference between the plan announced in a stream's `start` event (`estimated_sizes`: from
the text's length, asking no tokenizer, so `start` goes out at once) and the plan the run
follows (`exact_sizes`: the endpoints' own tokenizers). The arithmetic is `budget.Limits`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from docassist.pipelines.llm.budget import Limits
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.llm.prompts import Prompt, render
from docassist.pipelines.summaries.events import Strategy

PART_SLOTS = {"part": 99, "parts": 99}  # the widest part numbers a map prompt shows


@dataclass(frozen=True)
class Sizes:
    """Token sizes a plan depends on: the text as the final and the map endpoints count it, and
    the prompts of the final pass and of a map call without their text."""

    text_final: int
    text_map: int
    final_prompt: int
    part_prompt: int


@dataclass(frozen=True)
class Plan:
    strategy: Strategy
    text_tokens: int
    parts: int
    part_capacity: int  # tree: tokens of text one map call reads
    part_output: int  # tree: tokens one map call may write
    final_output: int
    eta_s: float

    def with_parts(self, part_tokens: list[int], map_ep: Endpoint, reduce_ep: Endpoint) -> Plan:
        """The plan once the text is split: the real number of parts and the ETA from their sizes."""
        return replace(
            self,
            parts=len(part_tokens),
            eta_s=tree_eta(map_ep, reduce_ep, part_tokens, self.part_output, self.final_output),
        )


def task_for(step: Literal["summarize", "map", "reduce"], question: str | None) -> str:
    """The prompt a step of the tree uses: with a question (an `/ask` whose context is condensed)
    every step keeps what bears on it (`focus`); without one, the step's own prompt."""
    return "focus" if question else step


def prompt(task: str, endpoint: Endpoint, language: str, text: str, question: str | None, **slots: int) -> Prompt:
    extra = {"question": question} if question else {}
    return render(
        task,
        endpoint.style,
        language,
        text=text,
        instructions=endpoint.spec.instructions,
        **extra,
        **slots,  # type: ignore[arg-type]
    )


def _empty_prompts(language: str, question: str | None, map_ep: Endpoint, reduce_ep: Endpoint) -> tuple[Prompt, Prompt]:
    final = prompt(task_for("summarize", question), reduce_ep, language, "", question)
    part = prompt(task_for("map", question), map_ep, language, "", question, **PART_SLOTS)
    return final, part


async def exact_sizes(text: str, language: str, question: str | None, map_ep: Endpoint, reduce_ep: Endpoint) -> Sizes:
    final, part = _empty_prompts(language, question, map_ep, reduce_ep)
    text_final = await reduce_ep.tokens.exact(text)
    text_map = text_final if map_ep.tokens is reduce_ep.tokens else await map_ep.tokens.exact(text)
    return Sizes(
        text_final=text_final,
        text_map=text_map,
        final_prompt=await reduce_ep.tokens.exact_prompt(final, reduce_ep.style),
        part_prompt=await map_ep.tokens.exact_prompt(part, map_ep.style),
    )


def estimated_sizes(chars: int, language: str, question: str | None, map_ep: Endpoint, reduce_ep: Endpoint) -> Sizes:
    final, part = _empty_prompts(language, question, map_ep, reduce_ep)
    return Sizes(
        text_final=reduce_ep.tokens.estimate_chars(chars),
        text_map=map_ep.tokens.estimate_chars(chars),
        final_prompt=reduce_ep.tokens.estimate_prompt(final, reduce_ep.style),
        part_prompt=map_ep.tokens.estimate_prompt(part, map_ep.style),
    )


def decide(sizes: Sizes, map_ep: Endpoint, reduce_ep: Endpoint, limits: Limits) -> Plan:
    """Direct when the text, the final prompt and the output fit the final endpoint's window;
    otherwise map parts that each fill one map call."""
    final_output = limits.output(reduce_ep.spec.summarization_max_output)
    if limits.fits(reduce_ep.spec.context_window, sizes.final_prompt, sizes.text_final, final_output):
        tp = reduce_ep.throughput
        eta = tp.predict(sizes.final_prompt + sizes.text_final, min(final_output, tp.avg_output))
        return Plan("direct", sizes.text_final, 1, 0, 0, final_output, round(eta, 1))
    window, max_out = map_ep.spec.context_window, reduce_ep.spec.summarization_max_output
    part_output = limits.part_output(window, sizes.part_prompt, max_out)
    capacity = limits.part_capacity(window, sizes.part_prompt, max_out)
    parts = max(1, math.ceil(sizes.text_map / max(1, capacity)))
    per_part = [math.ceil(sizes.text_map / parts) + sizes.part_prompt] * parts
    eta = tree_eta(map_ep, reduce_ep, per_part, part_output, final_output)
    return Plan("tree", sizes.text_final, parts, capacity, part_output, final_output, eta)


def tree_eta(
    map_ep: Endpoint, reduce_ep: Endpoint, part_tokens: list[int], part_output: int, final_output: int
) -> float:
    """Seconds for the map calls (their prompt tokens, concurrently up to the endpoint's limit) and
    the final pass over their outputs, at the endpoints' measured throughput."""
    tp = map_ep.throughput
    per_call = [tp.predict(p, min(part_output, tp.avg_output)) for p in part_tokens]
    parallel = max(1, min(map_ep.settings.max_concurrency, len(part_tokens) or 1))
    final = reduce_ep.throughput.predict(
        min(reduce_ep.spec.context_window, len(part_tokens) * part_output), final_output
    )
    return round(sum(per_call) / parallel + final, 1)
