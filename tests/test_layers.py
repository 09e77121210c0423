"""The arrows between layers point one way: import-linter checks the contracts of pyproject.toml's
`[tool.importlinter]` (api over pipelines, pipelines' features in their order, no import cycle,
type-only imports included) and a broken one fails here with import-linter's own report. The
contracts are only as good as the graph they are checked on, so the graph is checked to hold every
module of the mapped folders: `docassist` exists only through package-dir, and a root package
import-linter cannot walk would leave every contract trivially kept."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
TOOL = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
PACKAGE_DIRS: dict[str, str] = TOOL["setuptools"]["package-dir"]
ROOT_PACKAGES: list[str] = TOOL["importlinter"]["root_packages"]


def modules_in_tree() -> set[str]:
    """Every importable module under the mapped folders; Alembic's migrations are loaded by path."""
    found = set()
    for name, folder in PACKAGE_DIRS.items():
        base = ROOT / folder
        for path in base.rglob("*.py"):
            relative = path.relative_to(base).with_suffix("")
            if "migrations" in relative.parts or any(part.startswith(".") for part in relative.parts):
                continue
            found.add(".".join([name, *(part for part in relative.parts if part != "__init__")]))
    return found


def import_graph() -> grimp.ImportGraph:
    """The graph the contracts are checked on: type-only imports included."""
    return grimp.build_graph(*ROOT_PACKAGES, include_external_packages=False, exclude_type_checking_imports=False)


def test_import_linter_sees_every_module_of_the_mapped_folders():
    assert sorted(ROOT_PACKAGES) == sorted(PACKAGE_DIRS), "every mapped folder is a root package of the contracts"
    assert TOOL["importlinter"].get("exclude_type_checking_imports", False) is False
    assert modules_in_tree() - import_graph().modules == set(), "modules the contracts would not see"


def test_no_module_imports_itself_through_others():
    """Module by module, with no exception: the contracts' named shared modules relax the order of
    packages, never this."""
    graph = import_graph()
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append(" -> ".join((module, *back)))
    assert cycles == []


def test_the_layer_contracts_of_pyproject_hold():
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--config", "pyproject.toml", "--no-cache", "--no-logo"],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 broken" in proc.stdout
