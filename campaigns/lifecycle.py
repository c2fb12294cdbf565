"""The campaign lifecycle as data: which status may follow which, and under which action name.

``draft → piloting → pilot_done → quoted → approved → running ⇄ paused → completed``, and
``cancelled`` from any status that is not final. A pilot pauses too, keeping its phase:
``piloting ⇄ pilot_paused``. The operator's run-control verbs (``pause``, ``resume``,
``stop``) resolve to the status of the campaign's phase (:func:`run_control_target`): stopping
a pilot finishes it (``pilot_done``), stopping a full run completes it. Pure: no database.
"""

from __future__ import annotations

from campaigns.exceptions import IllegalTransition
from campaigns.models import CampaignStatus

__all__ = [
    "ACTIONS",
    "DIALING_STATUSES",
    "FINAL_STATUSES",
    "PAUSED_STATUSES",
    "RUN_CONTROL_ACTIONS",
    "TRANSITIONS",
    "allowed_next",
    "check_transition",
    "run_control_target",
]

S = CampaignStatus

TRANSITIONS: dict[CampaignStatus, tuple[CampaignStatus, ...]] = {
    S.draft: (S.piloting, S.cancelled),
    S.piloting: (S.pilot_paused, S.pilot_done, S.cancelled),
    S.pilot_paused: (S.piloting, S.pilot_done, S.cancelled),
    S.pilot_done: (S.quoted, S.cancelled),
    S.quoted: (S.approved, S.cancelled),
    S.approved: (S.running, S.cancelled),
    S.running: (S.paused, S.completed, S.cancelled),
    S.paused: (S.running, S.completed, S.cancelled),
    S.completed: (),
    S.cancelled: (),
}

FINAL_STATUSES = frozenset({S.completed, S.cancelled})
#: Statuses in which the hopper hands out leads and the dialer may start calls.
DIALING_STATUSES = frozenset({S.piloting, S.running})
#: Paused statuses, each keeping its phase: resume goes back to the dialing status of the pair.
PAUSED_STATUSES = frozenset({S.pilot_paused, S.paused})

#: Operator-facing action names (CLI verbs) and the status each leads to.
ACTIONS: dict[str, CampaignStatus] = {
    "start-pilot": S.piloting,
    "finish-pilot": S.pilot_done,
    "quote": S.quoted,
    "approve": S.approved,
    "start": S.running,
    "pause": S.paused,
    "resume": S.running,
    "stop": S.completed,
    "cancel": S.cancelled,
}

#: Run-control verb -> {current status: target status}, per phase.
RUN_CONTROL_ACTIONS: dict[str, dict[CampaignStatus, CampaignStatus]] = {
    "pause": {S.piloting: S.pilot_paused, S.running: S.paused},
    "resume": {S.pilot_paused: S.piloting, S.paused: S.running},
    "stop": {
        S.piloting: S.pilot_done,
        S.pilot_paused: S.pilot_done,
        S.running: S.completed,
        S.paused: S.completed,
    },
}


def allowed_next(status: CampaignStatus) -> list[CampaignStatus]:
    """The statuses a campaign in ``status`` may move to."""
    return list(TRANSITIONS[status])


def check_transition(current: CampaignStatus, target: CampaignStatus) -> None:
    """Raise IllegalTransition (409, with the allowed next states) unless current → target."""
    if target in TRANSITIONS[current]:
        return
    allowed = [s.value for s in TRANSITIONS[current]]
    hint = f"allowed next: {', '.join(allowed)}" if allowed else f"{current.value} is final"
    raise IllegalTransition(
        f"a campaign cannot go from {current.value} to {target.value} ({hint})",
        allowed_next_states=allowed,
    )


def run_control_target(action: str, current: CampaignStatus) -> CampaignStatus:
    """The status ``pause``/``resume``/``stop`` leads to from ``current`` (409 if none)."""
    targets = RUN_CONTROL_ACTIONS[action]
    target = targets.get(current)
    if target is None:
        applies = sorted(s.value for s in targets)
        allowed = [s.value for s in TRANSITIONS[current]]
        hint = f"allowed next: {', '.join(allowed)}" if allowed else f"{current.value} is final"
        raise IllegalTransition(
            f"a {current.value} campaign cannot {action} ({action} applies to a campaign that "
            f"is {' or '.join(applies)}; {hint})",
            allowed_next_states=allowed,
        )
    return target
