"""The `docassist` command line against a running service, and on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, Service, service_env

pytestmark = pytest.mark.slow  # runs the `docassist` command

DOCASSIST = str(Path(sys.executable).parent / "docassist")


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([DOCASSIST, *args], env=env, capture_output=True, text=True, timeout=300)


def test_cli_ingests_and_lists_through_the_running_service(service: Service, space):
    env = {**os.environ, "DOCASSIST_URL": service.url}
    out = run("ingest", str(FIXTURES / "baikal_ru.pdf"), "--space", space, env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["language"] == "ru" and doc["duplicate"] is False
    listed = json.loads(run("documents", "--space", space, env=env).stdout)
    assert [d["doc_id"] for d in listed["documents"]] == [doc["doc_id"]]


def test_cli_works_on_the_data_dir_when_no_service_runs(tmp_path):
    env = service_env(tmp_path / "data", DOCASSIST_URL="http://127.0.0.1:9")
    out = run("ingest", str(FIXTURES / "photosynthesis_en.docx"), "--space", "offline", env=env)
    assert out.returncode == 0, out.stderr + out.stdout
    doc = json.loads(out.stdout[out.stdout.index("{") :])
    assert doc["language"] == "en"
    listed = run("documents", "--space", "offline", env=env)
    assert doc["doc_id"] in listed.stdout


def test_cli_reports_a_missing_file(tmp_path):
    out = run("ingest", str(tmp_path / "nope.pdf"), env=dict(os.environ))
    assert out.returncode == 2 and "no such file" in out.stderr
