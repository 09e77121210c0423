"""The pages for people: `GET /` the web page, `GET /docs` the API reference, `/static` what
they load.

Plain HTML, CSS and JavaScript shipped inside the package (no build step, nothing fetched from
elsewhere); the API reference is Swagger UI from the pinned `swagger-ui-bundle` package, so it
works offline and under the service's Content-Security-Policy. The request guard leaves `/`,
`/docs`, `/openapi.json` and `/static/*` open; the page asks for a key itself when the API
answers 401.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter()


def _page(name: str) -> HTMLResponse:
    html = (STATIC_DIR / name).read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index() -> HTMLResponse:
    return _page("index.html")


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
async def api_reference() -> HTMLResponse:
    return _page("docs.html")


def mount(app: FastAPI) -> None:
    """Serve Swagger UI's files under `/static/swagger-ui`, the pages' own under `/static`."""
    app.mount("/static/swagger-ui", StaticFiles(directory=Path(str(swagger_ui_path))), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC_DIR, html=False), name="static")
