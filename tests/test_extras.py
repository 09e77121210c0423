"""A base install (`pip install -e .`) asked for what an optional extra provides says which extra to
install and how, instead of a traceback ending in `ModuleNotFoundError`."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from docassist.pipelines.extras import EXTRAS
from docassist.pipelines.search.embeddings import build_embedding
from docassist.pipelines.settings import ConfigError, EmbeddingSettings

ROOT = Path(__file__).parents[1]
SCRIPT = Path(sys.executable).parent / "docassist"  # the command `pip install -e .` puts on PATH


def _command(*args: str) -> list[str]:
    return [str(SCRIPT), *args] if SCRIPT.exists() else [sys.executable, "-m", "docassist.api.cli", *args]


@pytest.mark.parametrize(
    ("args", "hidden"),
    [(("eval", "summaries", "--split", "dev", "--limit", "1"), "lingua"), (("bench", "--quick"), "matplotlib")],
)
def test_a_command_whose_extra_is_missing_names_the_extra(tmp_path: Path, args: tuple[str, ...], hidden: str) -> None:
    # every interpreter started with this PYTHONPATH imports this first: the module is not there
    (tmp_path / "sitecustomize.py").write_text(f"import sys\n\nsys.modules[{hidden!r}] = None\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run(_command(*args), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 2, run.stderr
    assert f"docassist {args[0]} needs the eval extra: pip install -e '.[eval]'" in run.stderr
    assert hidden in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_huggingface_embeddings_without_torch_name_the_hf_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    expected = "EMBEDDING_KIND: huggingface needs the hf extra: pip install torch==2.13.0 && pip install -e '.[hf]'"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        build_embedding(EmbeddingSettings(kind="huggingface"))


def _dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_each_extra_checks_the_modules_of_the_requirements_pyproject_gives_it() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    owners = {
        module: {_dist(d) for d in dists} for module, dists in importlib.metadata.packages_distributions().items()
    }
    for extra in EXTRAS:
        required = {_dist(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in declared[extra.name]}
        checked = [owners.get(module.split(".")[0], set()) & required for module in extra.modules]
        assert all(checked), f"{extra.name}: a module no requirement of the extra installs: {extra.modules}"
        assert set().union(*checked) == required, f"{extra.name}: a requirement whose module is not checked"
