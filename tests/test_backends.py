"""One owner for backend knowledge: every provider a configuration may name has a backend, and no
module but `pipelines/llm/backends.py` tells providers apart by name. What each backend does on the
wire is tested against protocol stubs of the servers (tests/test_vllm_ollama_stubs.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from docassist.pipelines.llm.backends import backend_for
from docassist.pipelines.settings import Provider

ROOT = Path(__file__).resolve().parents[1]
COMPARISON = re.compile(r"""provider\s*(==|!=|\bin\b)|["'](vLLM|Ollama|llama\.cpp)["']\s*(==|!=|\bin\b)""")


def test_every_provider_has_its_backend():
    names = {backend_for(provider).name for provider in get_args(Provider)}
    assert names == set(get_args(Provider))


def test_no_module_but_the_backends_compares_provider_names():
    offenders = []
    for folder in ("pipelines", "api"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "backends.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if COMPARISON.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
