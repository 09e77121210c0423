"""The web page for people: `GET /` serves index.html, `/static` its script and style sheet.

Plain HTML, CSS and JavaScript shipped inside the package (no build step, nothing fetched from
elsewhere). The request guard leaves `/` and `/static/*` open; the page asks for a key itself
when the API answers 401.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index() -> HTMLResponse:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def mount(app: FastAPI) -> None:
    """Serve the page's script and style sheet under `/static`."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR, html=False), name="static")
