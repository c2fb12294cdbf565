"""The cross-tab page: two questions, counts with row and column percentages, a chart."""

from __future__ import annotations

import re
from typing import Any

from console_builders import make_user, published_with_answers, sign_in
from survey_builders import publish_via_api

from helpers import Tenant


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
