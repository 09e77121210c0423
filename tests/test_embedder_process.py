"""Uploads' passages are embedded by a process of their own (the real e5 model in a real child
process): the same vectors as in the service's process, at a lower CPU priority, and a child that
dies costs one batch a clear error, never the service."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from docassist.pipelines.errors import EmbedderUnavailable
from docassist.pipelines.priorities import BULK_NICE
from docassist.pipelines.search.embedder_process import ProcessEmbedding
from docassist.pipelines.search.embeddings import build_embedding
from docassist.pipelines.settings import load_settings
from tests.conftest import xquad_article

pytestmark = pytest.mark.slow  # starts the embedder process

SETTINGS = load_settings({}).profile.embedding


@pytest.fixture(scope="module")
def embedder():
    process = ProcessEmbedding(SETTINGS)
    process.start()
    yield process
    process.close()


def _passages(n: int) -> list[str]:
    text = xquad_article("ru", 0) + "\n\n" + xquad_article("en", 0)
    words = text.split()
    return [" ".join(words[(i * 37) % len(words) :][:60]) for i in range(n)]


def test_passages_are_embedded_in_a_child_at_lower_priority_with_the_service_model_vectors(embedder):
    passages = _passages(12)
    theirs = np.asarray(embedder.get_text_embedding_batch(passages))
    ours = np.asarray(build_embedding(SETTINGS).get_text_embedding_batch(passages))
    assert theirs.shape == ours.shape == (12, ours.shape[1])
    assert np.allclose(theirs, ours, atol=1e-5)
    pid = embedder.pid
    assert pid is not None and pid != os.getpid()
    assert os.getpriority(os.PRIO_PROCESS, pid) - os.getpriority(os.PRIO_PROCESS, 0) >= BULK_NICE


def test_a_child_killed_mid_batch_fails_that_batch_clearly_and_the_next_batch_gets_a_new_child(embedder):
    embedder.get_text_embedding_batch(["warm"])
    first = embedder.pid
    assert first is not None
    caught: list[BaseException] = []

    def long_batch() -> None:
        try:
            embedder._get_text_embeddings(_passages(600))  # one call to the child: several seconds of work
        except BaseException as exc:
            caught.append(exc)

    worker = threading.Thread(target=long_batch)
    worker.start()
    time.sleep(1.0)
    os.kill(first, signal.SIGKILL)
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert len(caught) == 1 and isinstance(caught[0], EmbedderUnavailable), caught
    assert "exited" in caught[0].message

    vectors = embedder.get_text_embedding_batch(["Байкал — самое глубокое озеро.", "Lake Baikal is deep."])
    assert len(vectors) == 2 and embedder.pid not in (None, first)


def test_the_child_exits_when_it_is_closed():
    process = ProcessEmbedding(SETTINGS)
    process.get_text_embedding_batch(["one passage"])
    pid = process.pid
    assert pid is not None
    process.close()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}")
