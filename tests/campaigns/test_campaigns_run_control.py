"""Pause, resume and stop keep the campaign's phase (pure lifecycle rules)."""

from __future__ import annotations

import pytest

from campaigns.exceptions import IllegalTransition
from campaigns.lifecycle import DIALING_STATUSES, PAUSED_STATUSES, check_transition
from campaigns.lifecycle import run_control_target as target
from campaigns.models import CampaignStatus as S


@pytest.mark.parametrize(
    ("dialing", "paused", "stopped"),
    [(S.piloting, S.pilot_paused, S.pilot_done), (S.running, S.paused, S.completed)],
)
def test_each_phase_pauses_resumes_and_stops_as_itself(dialing: S, paused: S, stopped: S) -> None:
    assert target("pause", dialing) is paused
    assert target("resume", paused) is dialing
    assert target("stop", dialing) is stopped
    assert target("stop", paused) is stopped
    for current, goal in ((dialing, paused), (paused, dialing), (dialing, stopped)):
        check_transition(current, goal)  # each is a legal transition of the lifecycle
    assert paused in PAUSED_STATUSES
    assert paused not in DIALING_STATUSES


def test_run_control_outside_its_statuses_is_refused_with_what_is_allowed() -> None:
    with pytest.raises(IllegalTransition, match="cannot resume") as caught:
        target("resume", S.piloting)
    assert caught.value.extra["allowed_next_states"] == ["pilot_paused", "pilot_done", "cancelled"]
    with pytest.raises(IllegalTransition, match="completed is final"):
        target("pause", S.completed)
    with pytest.raises(IllegalTransition):
        target("stop", S.pilot_done)
    with pytest.raises(IllegalTransition):
        check_transition(S.pilot_paused, S.running)  # a paused pilot resumes as a pilot
