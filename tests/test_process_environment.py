"""A copy of the environment taken while another thread changes it (llama-index sets and deletes
`TIKTOKEN_CACHE_DIR` as it loads its tokenizer): the service's start copied it for its llama.cpp
server and once failed with `KeyError` on CI, which took every test after it down."""

from __future__ import annotations

import os
import threading

from docassist.pipelines.environment import process_environment


def test_the_environment_is_copied_whole_while_another_thread_sets_and_deletes_a_variable():
    stop = threading.Event()

    def toggle() -> None:
        while not stop.is_set():
            os.environ["DOCASSIST_TOGGLED"] = "1"
            del os.environ["DOCASSIST_TOGGLED"]

    os.environ["DOCASSIST_KEPT"] = "kept"
    thread = threading.Thread(target=toggle)
    thread.start()
    try:
        copies = [process_environment() for _ in range(10_000)]
    finally:
        stop.set()
        thread.join()
        del os.environ["DOCASSIST_KEPT"]
    assert all(copy["DOCASSIST_KEPT"] == "kept" and copy["PATH"] == os.environ["PATH"] for copy in copies)
    assert all(copy.get("DOCASSIST_TOGGLED") in (None, "1") for copy in copies)
