"""The browser console: server-rendered pages (Jinja2, htmx) for every role, under /console.

Stack, chosen for a Python team on a call-centre LAN with no internet: pages are rendered by
the API process from Jinja2 templates; htmx (vendored, served from ``static/``) swaps page
parts for forms and polling; the live panel reads the server-sent-event stream with the
browser's own ``EventSource`` in a small script of ours; charts are inline SVG drawn on the
server. No CDN: every asset is served by Pilotdial. Pages call the same service functions as
the API routes, with the same tenant-scoped session (:mod:`api.console.web`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from api.console.web import SignInRequired, sign_in_redirect

__all__ = ["PAGE_MODULES", "install_console"]

PAGE_MODULES = (
    "api.console.pages_auth",
    "api.console.pages_operator",
    "api.console.pages_client",
    "api.console.pages_research",
    "api.console.pages_editor",
    "api.console.pages_sales",
    "api.console.pages_agent",
    "api.console.pages_agents",
)

STATIC_DIR = Path(__file__).parent / "static"


def install_console(app: FastAPI) -> None:
    """Mount the console's pages and static files on the app."""
    import importlib

    for name in PAGE_MODULES:
        module = importlib.import_module(name)
        app.include_router(module.router, prefix="/console", include_in_schema=False)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return sign_in_redirect(request)
