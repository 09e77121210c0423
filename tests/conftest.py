"""Fixtures that start the real parts once: the service in this process (`tests/inprocess.py`:
real uvicorn, the real llama.cpp server with the real Gemma GGUF, Qdrant Edge in a temporary
folder, the real embedding model), and `docassist serve` processes — through the harness the
benchmarks use (`bench/service.py`) — for what needs a process of its own. Tests talk HTTP to them.
Services that need an LLM but not its supervision share the session's llama.cpp server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from docassist.bench.service import Service, service_env, sse_events, start_service
from docassist.evals import datasets
from docassist.pipelines.storage.database import Database
from tests.directory import slapd  # noqa: F401 (one OpenLDAP directory for the whole session)
from tests.identity_provider import oidc_provider  # noqa: F401 (one OpenID provider for the whole session)
from tests.inprocess import InProcessService, in_process
from tests.otlp_receiver import OtlpReceiver
from tests.servers import fresh_postgres_database

FIXTURES = Path(__file__).parent / "fixtures"
# The committed sample of the evaluation data (tests/fixtures/evaldata/README.md), never
# DOCASSIST_EVALDATA: the tests pass in any clone and read the same documents everywhere.
EVALDATA = FIXTURES / "evaldata"
__all__ = [
    "EVALDATA",
    "FIXTURES",
    "Service",
    "ingest",
    "pdf_pages",
    "service_env",
    "sse_events",
    "start_service",
    "xquad_article",
]
# Fixtures that start processes of their own (a `docassist serve`, a browser, slapd, Node): the tests using
# them, however indirectly, are in the slow tier. So is a test marked `slow` where it starts one
# itself or takes more than 10 s; `pytest -m "not slow"` runs the rest.
PROCESS_FIXTURES = frozenset({"small_service", "shttp", "integrations", "browser", "slapd", "oidc_provider"})
PDF_PAGE = (612, 792)  # US Letter in points: 935 × 1,210 pixels at 110 dpi, exactly


def xquad_article(lang: str, index: int = 0) -> str:
    """The text of XQuAD dev article `index` of the sample (every dev paragraph is kept, so it is
    the same article as in the full evaluation data; wraps around)."""
    return datasets.xquad_article(lang, index, "dev", EVALDATA)


def marked_box(png: bytes) -> tuple[int, int, int, int] | None:
    """Left, top, right, bottom (pixels) of the yellow a page with a highlighted quote shows; None
    when nothing on it is marked. White paper under the mark turns pale yellow (red and green
    high, blue well below them), which no black-on-white page has."""
    import io

    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    yellow = (red > 220) & (green > 200) & (blue < red - 60)
    if not yellow.any():
        return None
    rows, cols = np.nonzero(yellow)
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


def pdf_pages(pages: list[str]) -> bytes:
    """A PDF with a text layer, one page per text (reportlab, DejaVu Sans, lines wrapped)."""
    import io

    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    from docassist.evals.scans import font_file

    pdfmetrics.registerFont(TTFont("DejaVuSans", font_file()))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=PDF_PAGE)
    for text in pages:
        c.setFont("DejaVuSans", 11)
        y = PDF_PAGE[1] - 72
        for paragraph in text.split("\n"):
            for line in simpleSplit(paragraph, "DejaVuSans", 11, PDF_PAGE[0] - 144) or [""]:
                c.drawString(72, y, line)
                y -= 14
        c.showPage()
    c.save()
    return buf.getvalue()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _docassist_logger_kept() -> Iterator[None]:
    """docassist's logger is the process's: a test that configures it for itself (onto the stdout
    pytest captures for that test alone) gets it back as it was, so the in-process services'
    records keep reaching their log files instead of a closed stream."""
    logger = logging.getLogger("docassist")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:], logger.propagate = handlers, propagate
    logger.setLevel(level)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database, once on SQLite in a temporary folder and once on a fresh PostgreSQL one."""
    if request.param == "sqlite":
        database = Database.for_data_dir(None, tmp_path)
        database.migrate()
        yield database
        database.close()
        return
    with fresh_postgres_database() as url:
        database = Database(url)
        database.migrate()
        yield database
        database.close()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessService]:
    """The embedded default, served in this process over real HTTP (upload limit lowered to test
    413 cheaply). Its llama.cpp server is the session's: the other services that need an LLM but
    not its supervision call it too (`llama_env`)."""
    with in_process(tmp_path_factory.mktemp("svc"), MAX_UPLOAD_MB="1") as svc:
        yield svc


@pytest.fixture(scope="session")
def llama_env(service: InProcessService) -> dict[str, str]:
    """What points a `docassist serve` at the session's llama.cpp server instead of a server of its own."""
    return service.llama_env


@pytest.fixture(scope="session")
def http(service: Service) -> Iterator[httpx.Client]:
    with service.client() as client:
        yield client


@pytest.fixture
def space(request: pytest.FixtureRequest) -> str:
    """A fresh space per test, so tests never see each other's documents."""
    return "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:60]


def ingest(http: httpx.Client, space: str, filename: str, data: bytes, **form: str) -> httpx.Response:
    """An upload answered when it has ended (`wait=true`), as scripts ask for it; the tests of
    upload jobs post without it."""
    return http.post("/ingest", files={"file": (filename, data)}, data={"space_id": space, "wait": "true", **form})


@pytest.fixture(scope="session")
def small_service(tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str]) -> Iterator[Service]:
    """The embedded default with a 1,024-token context window, so documents of a few
    paragraphs take the map-reduce path in seconds (an explicit LLM_CONTEXT_WINDOW wins over the
    window the shared server has)."""
    svc = start_service(tmp_path_factory.mktemp("small"), LLM_CONTEXT_WINDOW="1024", **llama_env)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def shttp(small_service: Service) -> Iterator[httpx.Client]:
    with small_service.client() as client:
        yield client


INTEGRATIONS_ADMIN = "integrations-admin-key-0001"
INTEGRATIONS_TEAM = "integrations-team-key-0002"
INTEGRATIONS_SCRAPER = "integrations-scraper-key-0003"
BAIKAL = (
    "Lake Baikal is the deepest lake on Earth, more than 1,600 metres deep. It lies in Siberia, "
    "in Russia. The Angara is the only river that flows out of Lake Baikal; hundreds of rivers flow into it. "
    "The lake freezes every winter, and its ice is so clear that you can see through it."
)


@dataclass
class Integrations:
    """A keyed service exporting traces to a local receiver, with one document in space `team`."""

    service: Service
    traces: OtlpReceiver
    admin_key: str = INTEGRATIONS_ADMIN
    team_key: str = INTEGRATIONS_TEAM
    space: str = "team"
    doc_id: str = ""

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    @property
    def team(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.team_key}"}


@pytest.fixture(scope="session")
def integrations(tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str]) -> Iterator[Integrations]:
    """`docassist serve` with a key for every space and a key for `team` only, exporting traces
    over OTLP to a receiver the tests read: what /metrics, /mcp, /v1 and traces are tested on."""
    traces = OtlpReceiver()
    svc = start_service(
        tmp_path_factory.mktemp("integrations"),
        API_KEYS=f"{INTEGRATIONS_ADMIN}:*,{INTEGRATIONS_TEAM}:team",
        METRICS_KEY=INTEGRATIONS_SCRAPER,
        OTEL_EXPORTER_OTLP_ENDPOINT=traces.url,
        OTEL_BSP_SCHEDULE_DELAY="200",
        **llama_env,
    )
    try:
        it = Integrations(svc, traces)
        with svc.client(**it.admin) as client:
            r = ingest(client, "team", "baikal.txt", BAIKAL.encode(), wait="true")
            assert r.status_code == 200, r.text
            it.doc_id = r.json()["doc_id"]
        yield it
    finally:
        svc.stop()
        traces.stop()
