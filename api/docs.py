"""``/docs``: Swagger UI served from our own files, so it works on a LAN with no internet.

FastAPI's default page loads Swagger UI from a CDN and is blank offline. The files under
``api/static/swagger-ui`` are swagger-ui-dist 5 (Apache-2.0, see its LICENSE there), the
release line that renders OpenAPI 3.1 as FastAPI writes it. ReDoc has no offline copy here,
so ``/redoc`` is switched off rather than left blank.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["SWAGGER_DIR", "install_docs"]

SWAGGER_DIR = Path(__file__).parent / "static" / "swagger-ui"
ASSETS = "/static/swagger-ui"


def install_docs(app: FastAPI) -> None:
    """Serve /docs with local Swagger UI assets (the app is built with ``docs_url=None``)."""
    app.mount(ASSETS, StaticFiles(directory=SWAGGER_DIR), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
