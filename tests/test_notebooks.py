"""The prompt-tuning notebooks run top to bottom on the embedded default (real llama.cpp,
Qdrant local mode, e5), as a user would run them, and show both prompt variants."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import EVALDATA

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"summary_prompts.ipynb", "answer_prompts.ipynb"}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llama_env: dict[str, str]
):
    monkeypatch.setenv("NOTEBOOK_DOCS", "1")
    for name, value in llama_env.items():  # the session's llama.cpp server: no server of the kernel's own to start
        monkeypatch.setenv(name, value)
    # the committed sample of the evaluation data, which has Russian articles but no ria_headlines_ru
    monkeypatch.setenv("DOCASSIST_EVALDATA", str(EVALDATA))
    monkeypatch.setenv("NOTEBOOK_SETS", "xquad_ru_articles,summeval_cnndm_en")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    notebook = nbformat.read(path, as_version=4)
    # the notebook switches prompt folders inside its kernel and must switch back: ask the kernel itself, last
    check = nbformat.v4.new_code_cell("import os; print(repr(os.environ.get('DOCASSIST_PROMPTS_DIR')))")
    notebook.cells.append(check)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = "".join(
        str(o.get("data", {}).get("text/markdown", "")) for c in notebook.cells for o in c.get("outputs", [])
    )
    assert "previous (HEAD)" in outputs and "candidate" in outputs, "both prompt variants are shown side by side"
    assert check.outputs[0]["text"].strip() == "None", "the kernel is left on the committed prompts"
