"""The browser faces of a node: the API docs page and the console, both same-origin only.

A node may sit on a closed government network, so nothing a browser loads from
it may come from anywhere else. FastAPI's own ``/docs`` and ``/redoc`` pages
load Swagger UI and ReDoc from a public CDN and render blank offline; they are
turned off (``docs_url=None``, ``redoc_url=None`` in ``create_app``) and served
here instead from the files of the ``fastapi-offline`` package (Swagger UI 5,
which renders OpenAPI 3.1; README "Dependencies and why"), so ``pip install``
alone brings them and no other project's file is in this repository.

The console (docs/CONSOLE.md) is static: ``GET /`` is its ``index.html`` and
``/console/`` its ES modules, translations and stylesheet, shipped as package
data. Everything it checks it checks in the browser, so these routes only serve
files: they read no state and decide nothing.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the docs pages' script, stylesheet and icon are served (same origin).
DOCS_ASSETS = "/docs-assets"
#: Where the console's modules and translations are served.
CONSOLE_ASSETS = "/console"
STATIC = Path(__file__).resolve().parent / "static"


def _docs_assets_dir() -> Path:
    """The directory of Swagger UI's and ReDoc's files inside the installed package."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc``, their assets, and the console at ``/``."""
    title = f"{app.title} API"
    app.mount(DOCS_ASSETS, StaticFiles(directory=_docs_assets_dir()), name="docs-assets")
    app.mount(CONSOLE_ASSETS, StaticFiles(directory=STATIC), name="console")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")
