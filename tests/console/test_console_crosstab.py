"""The cross-tab page: two questions, counts with row and column percentages, a chart."""

from __future__ import annotations

import re
import uuid
from typing import Any

from console_builders import make_user, sign_in
from survey_builders import publish_via_api

from helpers import Tenant

DOCUMENT = {
    "title": {"zh-Hans": "饮茶", "en": "Tea"},
    "languages": ["zh-Hans", "en"],
    "choice_lists": {
        "yn": [
            {"value": "yes", "label": {"zh-Hans": "是", "en": "Yes"}},
            {"value": "no", "label": {"zh-Hans": "否", "en": "No"}},
        ],
        "city": [
            {"value": "sh", "label": {"zh-Hans": "上海", "en": "Shanghai"}},
            {"value": "bj", "label": {"zh-Hans": "北京", "en": "Beijing"}},
        ],
    },
    "questions": [
        {"name": "city", "type": "single_choice", "label": {"zh-Hans": "城市", "en": "City"},
         "choices": "city", "required": True},
        {"name": "likes", "type": "single_choice", "label": {"zh-Hans": "喜欢茶吗", "en": "Likes"},
         "choices": "yn", "required": True},
    ],
}  # fmt: skip


def _interview(tenant: Tenant, version_id: str, city: str, likes: str) -> None:
    headers = tenant.headers()
    started = tenant.http.post(
        f"/questionnaire-versions/{version_id}/interviews",
        json={"call_id": f"call-{uuid.uuid4().hex[:8]}"},
        headers=headers,
    )
    assert started.status_code == 201, started.text
    interview = started.json()["id"]
    for question, value in (("city", city), ("likes", likes)):
        answered = tenant.http.post(
            f"/interviews/{interview}/answer",
            json={"question": question, "value": value},
            headers=headers,
        )
        assert answered.status_code == 200, answered.text
    if answered.json()["status"] != "completed":
        done = tenant.http.post(f"/interviews/{interview}/complete", headers=headers)
        assert done.status_code == 200, done.text


def published_with_answers(tenant: Tenant) -> str:
    """A published two-question survey with 5 completes: sh yes/yes/no, bj yes/no."""
    version = publish_via_api(tenant, {**DOCUMENT, "id": f"tea_{uuid.uuid4().hex[:6]}"})
    for city, likes in (("sh", "yes"), ("sh", "yes"), ("sh", "no"), ("bj", "yes"), ("bj", "no")):
        _interview(tenant, version["id"], city, likes)
    return str(version["id"])


def test_crosstab_counts_and_both_percentages(app: Any, alpha: Tenant, bravo: Tenant) -> None:
    version_id = published_with_answers(alpha)
    rita = sign_in(app.app, "rita", make_user("rita", "researcher", [alpha.client_id]))
    empty = rita.http.get(f"/console/versions/{version_id}/crosstab")
    assert empty.status_code == 200
    assert 'id="crosstab"' not in empty.text
    page = rita.http.get(
        f"/console/versions/{version_id}/crosstab?row=city&column=likes&language=en"
    )
    assert page.status_code == 200
    cell = re.search(r'data-cell="sh\|yes">(.*?)</td>', page.text, re.S)
    assert cell
    numbers = re.findall(r"[\d.]+", cell.group(1))
    # 2 of Shanghai's 3 (66.7 % of the row), 2 of the 3 who like tea (66.7 % of the column)
    assert numbers == ["2", "66.7", "66.7"]
    cell = re.search(r'data-cell="bj\|no">(.*?)</td>', page.text, re.S)
    assert cell
    assert re.findall(r"[\d.]+", cell.group(1)) == ["1", "50.0", "50.0"]
    assert "Shanghai" in page.text
    assert '<svg class="chart stacked"' in page.text
    assert "Shanghai · Yes: 66.7%" in page.text  # the chart's bar title
    unknown = rita.http.get(f"/console/versions/{version_id}/crosstab?row=city&column=nope")
    assert unknown.status_code == 422
    assert "nope" in unknown.text
    other = publish_via_api(bravo)
    assert rita.http.get(f"/console/versions/{other['id']}/crosstab").status_code == 404
