"""Campaign tests: a fixed suppression secret (the builders are tests/campaign_builders.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.settings import get_settings


@pytest.fixture(autouse=True)
def _suppression_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every campaigns test hashes numbers with the same known secret (no ./var writes)."""
    monkeypatch.setenv("PILOTDIAL_SECRET_KEY", "s" * 48)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
