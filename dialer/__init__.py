"""Pilotdial's dialer: pacing policies, telephony gateways, agents and the simulator.

The pure core: pacing policies decide how many calls to launch from a
:class:`PacingSnapshot`; :class:`TelephonyGateway` is the seam to a phone system, with the
seeded :class:`SimulatedGateway`; :class:`Agent` is the soft-phone state machine;
:class:`AbandonWindow` keeps the compliance window's counts; :class:`Simulation` runs a
campaign day. Nothing here touches a database or reads a clock.
"""

from dialer.abandon import AbandonCounts, AbandonWindow, abandon_rate, abandons_allowed
from dialer.agents import (
    Agent,
    AgentAction,
    AgentState,
    AgentTransition,
    CallbackRequest,
    TransferKind,
    TransferTarget,
    allowed_actions,
)
from dialer.distributions import Exponential, Fixed, LogNormal, TimeDistribution
from dialer.exceptions import (
    AgentError,
    DialerError,
    GatewayError,
    IllegalTransition,
    PolicyError,
    ScenarioError,
    UnknownCall,
)
from dialer.gateway import (
    Answered,
    AnswerKind,
    Busy,
    CallEvent,
    CallParameters,
    ConnectedToAgent,
    DtmfReceived,
    Failed,
    HangupParty,
    HungUp,
    MessageFinished,
    NoAnswer,
    OriginateRequest,
    Ringing,
    TelephonyGateway,
)
from dialer.pacing import (
    AgentlessPolicy,
    PacingMode,
    PacingPolicy,
    PacingSnapshot,
    PacingStats,
    PowerPolicy,
    PredictivePolicy,
    PreviewPolicy,
    ProgressivePolicy,
    load_policy,
    policy_for_mode,
)
from dialer.scenario import AmdPolicy, Scenario, parse_scenario
from dialer.simgateway import (
    GatewayProfile,
    ProbabilitySchedule,
    RandomRespondent,
    RespondentPrompt,
    RespondentReply,
    SimulatedGateway,
)
from dialer.simulator import Simulation, SimulationResult, simulate
from dialer.stats import DialOutcome, RecentStats

__all__ = [
    "AbandonCounts",
    "AbandonWindow",
    "Agent",
    "AgentAction",
    "AgentError",
    "AgentState",
    "AgentTransition",
    "AgentlessPolicy",
    "AmdPolicy",
    "AnswerKind",
    "Answered",
    "Busy",
    "CallEvent",
    "CallParameters",
    "CallbackRequest",
    "ConnectedToAgent",
    "DialOutcome",
    "DialerError",
    "DtmfReceived",
    "Exponential",
    "Failed",
    "Fixed",
    "GatewayError",
    "GatewayProfile",
    "HangupParty",
    "HungUp",
    "IllegalTransition",
    "LogNormal",
    "MessageFinished",
    "NoAnswer",
    "OriginateRequest",
    "PacingMode",
    "PacingPolicy",
    "PacingSnapshot",
    "PacingStats",
    "PolicyError",
    "PowerPolicy",
    "PredictivePolicy",
    "PreviewPolicy",
    "ProbabilitySchedule",
    "ProgressivePolicy",
    "RandomRespondent",
    "RecentStats",
    "RespondentPrompt",
    "RespondentReply",
    "Ringing",
    "Scenario",
    "ScenarioError",
    "SimulatedGateway",
    "Simulation",
    "SimulationResult",
    "TelephonyGateway",
    "TimeDistribution",
    "TransferKind",
    "TransferTarget",
    "UnknownCall",
    "abandon_rate",
    "abandons_allowed",
    "allowed_actions",
    "load_policy",
    "parse_scenario",
    "policy_for_mode",
    "simulate",
]
