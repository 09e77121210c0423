"""The session's OpenLDAP directory (`bench/directory.py`: a real slapd with generated people,
groups and certificates). A test module takes it with `from tests.directory import slapd`."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from docassist.bench.directory import PEOPLE, SUFFIX, Slapd, write_ca

__all__ = ["PEOPLE", "SUFFIX", "Slapd", "slapd", "write_ca"]


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    folder = Path(tempfile.mkdtemp(prefix="docassist-slapd-"))
    directory = Slapd(folder)
    directory.start()
    try:
        yield directory
    finally:
        directory.stop()
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["Slapd", "slapd", "write_ca"]
