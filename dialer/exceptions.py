"""Exceptions raised by the dialer.

Each class also derives from the matching ``core.errors`` base, so the API maps it to the
right HTTP status and the CLI prints it as one line::

    DialerError                   base class; catch this to handle any dialer failure
    ├── ScenarioError             a simulation scenario is malformed (names the bad key)
    ├── PolicyError               a pacing policy could not be loaded or configured
    ├── AgentError                an agent action could not be applied
    │   └── IllegalTransition     the action is not allowed in the agent's state (lists allowed)
    └── GatewayError              the telephony gateway refused a request
        └── UnknownCall           the call id is not (or no longer) known to the gateway

Every message says what is wrong and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.errors import Conflict, InvalidInput, NotFound, PilotdialError

__all__ = [
    "AgentError",
    "DialerError",
    "GatewayError",
    "IllegalTransition",
    "PolicyError",
    "ScenarioError",
    "UnknownCall",
]


class DialerError(PilotdialError):
    """Base class of every error raised by the dialer package."""

    code = "dialer"
    title = "Dialer error"


class ScenarioError(DialerError, InvalidInput):
    """A simulation scenario is malformed; ``key`` names the offending key path."""

    code = "invalid-scenario"
    title = "Invalid simulation scenario"

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"scenario key {key!r}: {problem}", extra={"key": key})
        self.key = key
        self.problem = problem


class PolicyError(DialerError, InvalidInput):
    """A pacing policy could not be imported, built or configured."""

    code = "invalid-policy"
    title = "Invalid pacing policy"


class AgentError(DialerError, InvalidInput):
    """An agent action is malformed (e.g. a timestamp earlier than the agent's last one)."""

    code = "invalid-agent-action"
    title = "Invalid agent action"


class IllegalTransition(AgentError, Conflict):
    """An agent action that the agent's current state does not allow."""

    code = "illegal-agent-transition"
    title = "Action not allowed in the agent's state"

    def __init__(self, agent_id: str, state: str, action: str, allowed: Iterable[str]) -> None:
        self.agent_id = agent_id
        self.state = state
        self.action = action
        self.allowed = tuple(sorted(allowed))
        allowed_text = ", ".join(self.allowed) or "none"
        super().__init__(
            f"agent {agent_id!r} cannot {action!r} while {state!r}; allowed now: {allowed_text}",
            extra={"state": state, "action": action, "allowed": list(self.allowed)},
        )


class GatewayError(DialerError):
    """The telephony gateway refused or could not carry out a request."""

    code = "gateway"
    title = "Telephony gateway error"


class UnknownCall(GatewayError, NotFound):
    """The call id is not known to the gateway, or the call has already ended."""

    code = "unknown-call"
    title = "Unknown call"
