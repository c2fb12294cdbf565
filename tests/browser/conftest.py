"""Browser tests: Playwright driving Debian's Chromium against a real uvicorn server.

The server runs the whole app (API and console) on this run's PostgreSQL, on a free loopback
port, in a thread of the test process. Browser builds cannot be downloaded here, so the
system's ``/usr/bin/chromium`` is launched; without it the tests skip locally and fail in CI.
Screenshots go to ``artifacts/screenshots`` (ignored by git).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from helpers import live_server

CHROMIUM = os.environ.get("PILOTDIAL_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's sync API keeps an event
    loop running in this thread while it is started, and every later test of the same xdist
    worker that calls ``asyncio.run`` would fail ("cannot be called from a running loop")."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing: .ci/run installs chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def server(configure: Callable[..., None], pg_url: str, pg_engine: Engine) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port; yields its base URL."""
    from api.main import create_app
    from core.queue import drain_embedded

    configure(database_url=pg_url)
    with live_server(create_app()) as base:
        yield base
    drain_embedded()


@pytest.fixture
def page_for(browser: Any, server: str) -> Iterator[Callable[..., Any]]:
    """A new browser context (own cookies) at 1280x800, signed in as a user."""
    contexts: list[Any] = []

    def _open(username: str, password: str) -> Any:
        context = browser.new_context(
            viewport={"width": 1280, "height": 800}, base_url=server, accept_downloads=True
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto("/console/login")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("button.primary")
        page.wait_for_url("**/console/**")
        return page

    yield _open
    for context in contexts:
        context.close()
