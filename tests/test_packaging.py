"""The wheel holds every package of the repository: each folder with Python modules under a mapped
top-level folder (api/, pipelines/, …) is listed in pyproject.toml's `packages`, and nothing listed
is missing — a new folder left out would install without its modules and fail only when imported
from site-packages. Read from pyproject.toml and the tree; no build needed."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def packages_in_tree() -> set[str]:
    found = set()
    for name, folder in SETUPTOOLS["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            if any(part.startswith((".", "_")) or part == "migrations" for part in relative.parts):
                continue
            found.add(".".join([name, *relative.parts]))
    return found


def test_every_package_folder_is_listed_and_every_listed_package_exists():
    listed = set(SETUPTOOLS["packages"])
    in_tree = packages_in_tree()
    assert in_tree - listed == set(), "folders with modules that the wheel would leave out"
    assert listed - in_tree == set(), "packages listed in pyproject.toml with no folder"


def test_the_data_files_modules_read_are_declared():
    data = SETUPTOOLS["package-data"]
    assert {"migrations/versions/*.py", "migrations/*.py"} <= set(data["docassist.pipelines.storage"])
    assert any((ROOT / "pipelines/storage/migrations/versions").glob("0*.py"))
    assert "static/*" in data["docassist.api"] and (ROOT / "api/static/app.js").exists()
    assert (ROOT / "config/profiles/local.json").exists() and any((ROOT / "prompts").glob("*.toml"))
