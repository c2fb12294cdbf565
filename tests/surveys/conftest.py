"""Fixtures for the survey engine tests: the demo questionnaire and small builders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from surveys.engine import InterviewEngine
from surveys.schema import Questionnaire, load_questionnaire, parse_questionnaire

SAMPLE = Path(__file__).resolve().parents[2] / "surveys" / "samples" / "customer_satisfaction.yaml"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LEAD = {"customer_name": "王小明", "region": "north", "product": "智慧電表"}


@pytest.fixture(scope="session")
def sample() -> Questionnaire:
    return load_questionnaire(SAMPLE)


@pytest.fixture(scope="session")
def sample_engine(sample: Questionnaire) -> InterviewEngine:
    return InterviewEngine(sample)


def make_questionnaire(questions: list[dict[str, Any]], **overrides: Any) -> Questionnaire:
    """A small bilingual questionnaire around the given questions."""
    document: dict[str, Any] = {
        "id": "test_form",
        "title": {"en": "Test", "zh-Hant": "測試"},
        "languages": ["en", "zh-Hant"],
        "choice_lists": {
            "yes_no": [
                {"value": "y", "label": {"en": "Yes", "zh-Hant": "是"}},
                {"value": "n", "label": {"en": "No", "zh-Hant": "否"}},
            ],
            "fruit": [
                {"value": "apple", "label": {"en": "Apple", "zh-Hant": "蘋果"}},
                {"value": "pear", "label": {"en": "Pear", "zh-Hant": "梨"}},
                {"value": "plum", "label": {"en": "Plum", "zh-Hant": "李"}},
                {"value": "kiwi", "label": {"en": "Kiwi", "zh-Hant": "奇異果"}},
                {"value": "other", "label": {"en": "Other", "zh-Hant": "其他"}, "special": "other"},
                {
                    "value": "dk",
                    "label": {"en": "Don't know", "zh-Hant": "不知道"},
                    "special": "dont_know",
                },
            ],
        },
        "questions": questions,
    }
    document.update(overrides)
    return parse_questionnaire(document)


@pytest.fixture
def build() -> Callable[..., Questionnaire]:
    return make_questionnaire


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def lead() -> dict[str, str]:
    return dict(LEAD)


@pytest.fixture(scope="session")
def sample_path() -> Path:
    return SAMPLE
