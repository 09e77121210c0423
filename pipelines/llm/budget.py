"""Token budgets: how much one call may read and write. The one place this arithmetic lives.

Every call: `available = context_window - prompt_tokens - safety_margin` and
`max_tokens = min(configured maximum, available)`; a prompt that leaves less than the minimum
useful output is never sent (`ContextOverflow`: the caller splits its input instead). Summaries
and answers size their inputs with the same rule read the other way round: how much text fits
one call once its prompt and its output allowance are set aside.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pydantic import Field

from docassist.pipelines.environment import FromEnvironment
from docassist.pipelines.errors import ContextOverflow


class Limits(FromEnvironment):
    """The service's limits on every call (`LLM_MAX_TOKENS` and the margins around it)."""

    max_tokens: int = Field(default=2048, gt=0, validation_alias="LLM_MAX_TOKENS")
    safety_margin: int = Field(default=64, ge=0)
    min_useful_output: int = Field(default=64, gt=0)

    def output(self, model_max_output: int) -> int:
        """What a summary or an answer may generate: the model's cap within the service's."""
        return min(model_max_output, self.max_tokens)

    def room(self, context_window: int, prompt_tokens: int, output: int) -> int:
        """Tokens of text that fit one call beside its prompt and its output allowance."""
        return context_window - prompt_tokens - output - self.safety_margin

    def fits(self, context_window: int, prompt_tokens: int, text_tokens: int, output: int) -> bool:
        return text_tokens <= self.room(context_window, prompt_tokens, output)

    def part_output(self, context_window: int, prompt_tokens: int, model_max_output: int) -> int:
        """Output allowance of one map or reduce call: a quarter of what the window leaves beside
        the prompt, at most the model's cap, at least the minimum useful output. Partial
        summaries must be much shorter than their input, or the tree does not shrink."""
        left = context_window - prompt_tokens - self.safety_margin
        return max(self.min_useful_output, min(self.output(model_max_output), left // 4))

    def part_capacity(self, context_window: int, prompt_tokens: int, model_max_output: int) -> int:
        """Tokens of text one map or reduce call can read."""
        out = self.part_output(context_window, prompt_tokens, model_max_output)
        return self.room(context_window, prompt_tokens, out)

    def call(self, context_window: int, prompt_tokens: int, max_output: int | None = None) -> Budget:
        """The budget of one call, or `ContextOverflow` when the prompt leaves too little room."""
        configured = min(self.max_tokens, max_output or self.max_tokens)
        available = context_window - prompt_tokens - self.safety_margin
        budget = Budget(context_window, prompt_tokens, self.safety_margin, available, min(configured, available))
        if available < self.min_useful_output:
            raise ContextOverflow(
                f"prompt of {prompt_tokens} tokens leaves {available} of {context_window} for the answer; "
                "split the input",
                **budget.__dict__,
            )
        return budget


@dataclass(frozen=True)
class Budget:
    context_window: int
    prompt_tokens: int
    safety_margin: int
    available: int
    max_tokens: int

    def all_room(self) -> Budget:
        """Everything the window leaves: for a reasoning model that spent its budget thinking."""
        return replace(self, max_tokens=self.available)
