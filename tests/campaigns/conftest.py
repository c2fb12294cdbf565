"""Campaign tests: a fixed suppression secret, and builders importable as ``campaign_builders``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import get_settings

# The builders module sits next to this file; make it importable as ``campaign_builders``.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _suppression_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every campaigns test hashes numbers with the same known secret (no ./var writes)."""
    monkeypatch.setenv("PILOTDIAL_SECRET_KEY", "s" * 48)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
