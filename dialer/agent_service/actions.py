"""Soft-phone actions: :func:`apply_agent_action` applies one command under the seat's lock."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from campaigns.compliance import check_manual_dial
from campaigns.models import CallAttempt, CampaignLead
from core.models import Client
from dialer.agent_service._common import (
    _CALL_STATES,
    _CLIENT_STATES,
    _S,
    AgentInactive,
    ClientScope,
    _dt,
    _event,
    _expire,
    _locked_seat,
    _log,
    _moment,
    _scope_strings,
    agent_from_seat,
)
from dialer.agent_service.commands import (
    AgentCommand,
    Connect,
    Dial,
    DispositionCommand,
    InternalCall,
    OfferPreview,
    ScheduleCallback,
    SignIn,
    Transfer,
)
from dialer.agent_service.dispositions import (
    _check_disposition,
    _dialer_call,
    _no_dialer_call,
    _store_disposition,
)
from dialer.agent_service.pacers import lead_for_number
from dialer.agents import CallbackRequest, TransferKind, TransferTarget
from dialer.exceptions import AgentError
from dialer.models import (
    AgentDisposition,
    AgentEvent,
    AgentEventKind,
    AgentSeat,
    AgentStateLog,
    CallbackPublic,
)

_NUMBER_RE = re.compile(r"^\+?[0-9*#]{3,32}$")


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """An applied action: the seat after it, its log entry, and any scheduled callback.

    ``expired`` holds the log entry of a timed wrap-up that ended before the action.
    """

    seat: AgentSeat
    log: AgentStateLog
    callback: CallbackRequest | None = None
    client_id: uuid.UUID | None = None
    expired: AgentStateLog | None = None
    events: list[AgentEvent] = field(default_factory=list)
    disposition: AgentDisposition | None = None

    def callback_public(self) -> CallbackPublic | None:
        """The callback in API shape, if the action scheduled one."""
        if self.callback is None:
            return None
        return CallbackPublic(
            lead_id=self.callback.lead_id,
            callback_at=_dt(self.callback.callback_at_s),
            agent_code=self.callback.agent_id,
            note=self.callback.note,
            client_id=self.client_id,
        )


def _check_target(session: Session, target: TransferTarget, seat: AgentSeat) -> None:
    if target.kind is TransferKind.EXTERNAL and not _NUMBER_RE.match(target.target):
        raise AgentError(
            f"{target.target!r} is not a phone number; give 3-32 digits, optionally with a "
            "leading +"
        )
    if target.kind is TransferKind.AGENT:
        if target.target == seat.agent_code:
            raise AgentError("an agent cannot transfer or consult to itself; pick another 工號")
        found = session.exec(
            select(AgentSeat.id).where(AgentSeat.agent_code == target.target)
        ).first()
        if found is None:
            raise AgentError(f"no agent has the 工號 {target.target!r}; check the code")


def _call_client(
    seat: AgentSeat, client_id: uuid.UUID | None, scope: frozenset[str] | None
) -> uuid.UUID:
    """The client a manual call is made for: given, or the agent's only client."""
    if client_id is None:
        candidates = [c for c in seat.client_ids if scope is None or c in scope]
        if len(candidates) != 1:
            raise AgentError(
                f"agent {seat.agent_code!r} serves {len(candidates)} of your clients; say which "
                "client the call is for with client_id"
            )
        return uuid.UUID(candidates[0])
    if str(client_id) not in seat.client_ids or (scope is not None and str(client_id) not in scope):
        raise AgentError(
            f"agent {seat.agent_code!r} does not take calls for client {client_id}; add the "
            "client to the agent first"
        )
    return client_id


def _manual_number(session: Session, client_id: uuid.UUID, number: str | None) -> str:
    """The number of a manual call, with the checks every dial gets: read as the cleaner
    reads it, never a do-not-call number."""
    if number is None or not number.strip():
        raise AgentError(
            "a manual call needs the number to dial (e.g. +86 139 1234 5678)",
            extra={"field": "number"},
        )
    client = session.get(Client, client_id)
    return check_manual_dial(
        session=session,
        client_id=client_id,
        number=number,
        region=client.default_region if client is not None else "CN",
    )


def apply_agent_action(
    *,
    session: Session,
    agent_id: uuid.UUID,
    command: AgentCommand,
    at: datetime | None = None,
    client_scope: ClientScope = None,
) -> ActionOutcome:
    """Apply one soft-phone command under the seat's row lock and log it.

    Raises IllegalTransition (lists the allowed actions) or AgentError (a missing detail). A
    timed wrap-up whose deadline passed is finished first (logged with reason
    ``wrap_timeout``). Leaving a call writes a ``call_ended`` event for the call's client.
    A :class:`DispositionCommand`'s ``disposition`` dispositions the dialer call the agent is
    on or wrapping up, as :func:`submit_disposition` does; a callback scheduled on a dialer
    call is stored with it, for the dial loop to write to the campaign lead.
    """
    action = command.action
    seat = _locked_seat(session, agent_id, client_scope)
    if isinstance(command, SignIn) and not seat.active:
        raise AgentInactive(
            f"agent {seat.agent_code!r} is deactivated; an operator reactivates it on the "
            "console's agents page"
        )
    scope = _scope_strings(client_scope)
    agent = agent_from_seat(seat)
    at_s = _moment(agent, at)
    expired = _expire(session, seat, at_s)
    agent = agent_from_seat(seat)

    details: dict[str, Any] = {}
    call_client = seat.current_client_id
    call_id: str | None = None
    lead_id: str | None = None
    transfer: TransferTarget | None = None
    callback_at: datetime | None = None
    callback_at_s: float | None = None
    to_group = False
    # Details are validated only when the state machine would accept the action at all, so
    # an illegal action always answers with the allowed ones.
    match command:
        case Dial() if action in agent.allowed:
            number = command.number
            if agent.state is not _S.PREVIEWING:
                call_client = _call_client(seat, command.client_id, scope)
                number = _manual_number(session, call_client, number)
            call_id, lead_id = command.call_id or uuid.uuid4().hex, command.lead_id
            if number is not None:
                details["number"] = number
            target = command.campaign_lead
            if target is None and number is not None and agent.state is not _S.PREVIEWING:
                # a typed number that is a waiting lead of a live-paced campaign: dialed by it
                assert call_client is not None
                target = lead_for_number(session, seat, call_client, number)
                if target is not None and lead_id is None:
                    found = session.get(CampaignLead, target[1])
                    lead_id = None if found is None else str(found.lead_id)
            if target is not None:  # for the campaign's pacer to place
                details["campaign_id"] = str(target[0])
                details["campaign_lead_id"] = str(target[1])
        case Dial() | OfferPreview():
            call_id, lead_id = command.call_id, command.lead_id
        case Connect():
            call_id, lead_id = command.call_id, command.lead_id
            if call_client is None and command.client_id is not None:
                call_client = _call_client(seat, command.client_id, scope)
        case Transfer() | InternalCall() if command.target is not None:
            transfer = command.target
            if action in agent.allowed:
                _check_target(session, transfer, seat)
            details["target"] = {"kind": transfer.kind.value, "target": transfer.target}
        case ScheduleCallback():
            lead_id, callback_at, to_group = command.lead_id, command.callback_at, command.to_group
            if callback_at is not None:
                if callback_at.tzinfo is None:
                    raise AgentError(
                        "callback_at has no timezone; send it with an offset, e.g. +08:00"
                    )
                callback_at_s = callback_at.timestamp()
                details["callback_at"] = callback_at.astimezone(UTC).isoformat()
    if (
        call_client is not None
        and scope is not None
        and str(call_client) not in scope
        and agent.state in _CLIENT_STATES
    ):
        # Another client's call: a key without that client may not handle it.
        raise AgentError(
            f"agent {seat.agent_code!r} is on a call for a client this key cannot act for"
        )

    disposition = command.disposition if isinstance(command, DispositionCommand) else None
    dialer_call: tuple[AgentEvent, CallAttempt] | None = None
    if action in agent.allowed and (
        disposition is not None or isinstance(command, ScheduleCallback)
    ):
        dialer_call = _dialer_call(session, seat, agent)
        if disposition is not None:
            if dialer_call is None:
                raise _no_dialer_call(seat, agent)
            _check_disposition(session, dialer_call[1], disposition, callback_at)
            details["disposition"] = disposition

    transition = agent.apply(
        action,
        at_s=at_s,
        reason=command.reason,
        call_id=call_id,
        lead_id=lead_id,
        transfer=transfer,
        callback_at_s=callback_at_s,
    )
    seat.current_client_id = call_client
    if transition.callback is not None:
        details["callback_lead_id"] = transition.callback.lead_id
    stored: AgentDisposition | None = None
    if dialer_call is not None:
        callback = transition.callback
        stored = _store_disposition(
            session,
            seat,
            dialer_call,
            disposition=disposition,
            callback_at=None if callback is None else _dt(callback.callback_at_s),
            note=None if callback is None else callback.note or None,
            at_s=at_s,
            callback_to_group=None if callback is None else to_group,
        )
    entry = _log(session, seat, transition, client_id=call_client, details=details)
    events: list[AgentEvent] = []
    ended = transition.previous_state in _CALL_STATES and transition.state not in _CALL_STATES
    if ended and call_client is not None:
        events.append(
            _event(
                session,
                seat,
                client_id=call_client,
                kind=AgentEventKind.CALL_ENDED,
                call_id=transition.call_id,
                attempt_id=None,
                payload={
                    "call_id": transition.call_id,
                    "lead_id": transition.agent.lead_id,
                    "action": action.value,
                    "reason": command.reason,
                    "ended_at": _dt(at_s).isoformat(),
                    **details,
                },
            )
        )
    session.add(seat)
    session.flush()
    return ActionOutcome(seat, entry, transition.callback, call_client, expired, events, stored)
