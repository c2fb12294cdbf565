"""What an attended run is configured with and reports, and whether a campaign can run one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel import Session, select

from campaigns.models import Campaign, CampaignKind, Disposition
from core.errors import Conflict, InvalidInput
from dialer.agent_service import list_agents
from dialer.exceptions import DialerError
from dialer.models import AgentSeat
from dialer.pacing import PacingMode
from dialer.scenario import AmdPolicy

__all__ = [
    "MACHINE_MESSAGE",
    "SAFE_HARBOUR_MESSAGE",
    "SURPLUS_CAUSE",
    "AgentsMode",
    "AttendedConfig",
    "AttendedResult",
    "LiveDialingUnavailable",
    "campaign_codes",
    "check_live_campaign",
]

#: The gateway's message names: the safe-harbour message to a callee no agent was free for,
#: and the message left on a machine (AMD policy ``leave_message``).
SAFE_HARBOUR_MESSAGE = "safe_harbour"
MACHINE_MESSAGE = "machine_message"
#: The hang-up cause of an attempt cancelled ringing because no agent would be free for it.
SURPLUS_CAUSE = "dialer: no agent free (cancelled ringing)"


class AgentsMode(StrEnum):
    """Who takes a pacer's calls: simulated agents (the simulator) or the real agent seats."""

    SIMULATED = "simulated"
    LIVE = "live"


class LiveDialingUnavailable(DialerError, Conflict):
    """The campaign cannot be dialed for real agents (says what to set up first)."""

    code = "live-dialing-unavailable"
    title = "Live dialing unavailable"


@dataclass
class AttendedConfig:
    """How the attended loop runs; times are seconds."""

    #: None: dial until the campaign pauses or stops (the run-control service).
    duration_s: float | None = 8 * 3600
    tick_s: float = 1.0
    abandon_grace_s: float = 2.0
    amd_policy: AmdPolicy = AmdPolicy.HANG_UP
    default_disposition: str = "callback_requested"
    lease_seconds: int = 300
    check_s: float = 2.0
    drain_limit_s: float = 300.0
    hopper_backoff_s: float = 30.0
    #: A ringing call no agent would be free for (an agent went not ready or signed out after
    #: it was launched) is hung up once it has rung this long, unanswered, rather than risk an
    #: abandon; 15 s is the US minimum before disconnecting an unanswered call (47 CFR
    #: 64.1200(a)(6): 15 seconds or four rings). None: never cancel.
    surplus_min_ring_s: float | None = 15.0

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> AttendedConfig:
        """The config from a job's parameters (unknown keys are ignored)."""
        known = {k: v for k, v in params.items() if k in cls.__dataclass_fields__}
        if "amd_policy" in known:
            known["amd_policy"] = AmdPolicy(known["amd_policy"])
        return cls(**known)


@dataclass
class AttendedResult:
    """What one attended run did."""

    dials: int = 0
    completed: int = 0
    late_completions: int = 0
    suppressed_at_dial: int = 0
    orphans_found: int = 0
    #: calls a dead predecessor left up that this run ended before dialing
    left_calls_ended: int = 0
    live_answers: int = 0
    machine_answers: int = 0
    connected: int = 0
    abandoned: int = 0
    agent_dispositions: int = 0
    default_dispositions: int = 0
    phones_lost: int = 0
    dropped_calls: int = 0
    #: ringing calls hung up because no agent would be free for them (attempts: no answer)
    surplus_cancelled: int = 0
    #: connected calls an agent handed to another agent
    transfers: int = 0
    #: calls transferred out to an outside number, and those whose number did not answer
    transfers_out: int = 0
    transfers_out_failed: int = 0
    #: call recordings stored with their attempts
    recordings: int = 0
    #: agentless campaigns: IVR interviews stored in the survey tables, and not (failed)
    interviews_stored: int = 0
    interviews_not_stored: int = 0
    stopped_because: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return dict(self.__dict__)


def campaign_codes(session: Session, campaign_id: uuid.UUID) -> set[str]:
    rows = session.exec(select(Disposition.code).where(Disposition.campaign_id == campaign_id))
    return set(rows)


def check_live_campaign(
    *, session: Session, campaign: Campaign, default_disposition: str | None = None
) -> list[AgentSeat]:
    """The agent seats that would take the campaign's calls (none for an agentless survey,
    interviewed by the IVR); raises LiveDialingUnavailable (409) when there are none or the
    campaign cannot be dialed live, InvalidInput (422) for a default disposition outside the
    campaign's codes."""
    mode = PacingMode(campaign.pacing_mode.value)
    if campaign.skill_group is None and mode is not PacingMode.AGENTLESS:
        raise LiveDialingUnavailable(
            "the campaign has no skill_group, so no agents can be found for it; set one "
            "(PATCH /campaigns/{id} with skill_group) or start the pacer with agents_mode "
            "'simulated'",
            extra={"field": "skill_group"},
        )
    if not campaign.caller_id:
        # Never "anonymous": carriers reject or flag withheld numbers, and regulators
        # (Ofcom, the FCC) require a number the callee can call back.
        raise LiveDialingUnavailable(
            "the campaign has no caller_id, the number its calls present; set one (PATCH "
            "/campaigns/{id} with caller_id, e.g. +862155550000) before dialing live",
            extra={"field": "caller_id"},
        )
    seats: list[AgentSeat] = []
    if mode is PacingMode.AGENTLESS:
        if campaign.kind is not CampaignKind.survey or campaign.questionnaire_version_id is None:
            raise LiveDialingUnavailable(
                "an agentless campaign is interviewed by the IVR: it needs kind 'survey' and "
                "a published questionnaire (PATCH /campaigns/{id} with "
                "questionnaire_version_id)",
                extra={"field": "questionnaire_version_id"},
            )
    else:
        seats = list_agents(
            session=session, client_scope=[campaign.client_id], skill_group=campaign.skill_group
        )
    if not seats and mode is not PacingMode.AGENTLESS:
        raise LiveDialingUnavailable(
            f"no agent in skill group {campaign.skill_group!r} serves this client; create "
            "agents (POST /agents with that skill group and this client) and sign them in, "
            "or start the pacer with agents_mode 'simulated'",
            extra={"field": "agents_mode", "skill_group": campaign.skill_group},
        )
    if default_disposition is not None:
        codes = campaign_codes(session, campaign.id)
        if default_disposition not in codes:
            raise InvalidInput(
                f"default_disposition {default_disposition!r} is not one of the campaign's "
                f"codes; use one of {', '.join(sorted(codes))}",
                extra={"field": "default_disposition", "allowed": sorted(codes)},
            )
    return seats
