"""Agents on the database: create and find them, apply soft-phone actions, pop calls.

The pure :class:`dialer.agents.Agent` is the single source of truth for state: every change
loads the seat's snapshot, applies one action, and stores the result (state columns, snapshot,
one :class:`AgentStateLog` row). The seat row is locked first (``SELECT … FOR UPDATE`` on
PostgreSQL; a no-op ``UPDATE`` that takes SQLite's write lock), so two API processes acting on
one agent serialise and the per-agent sequence numbers stay gap-free and ordered by commit.

Services are keyword-only and only flush; the caller owns the transaction. ``client_scope``
(the caller's clients, ``None`` for trusted code) hides agents that serve none of them, and
hides call details (lead, call id, transfer number) of other clients' calls in the state log.
Timestamps default to now, but never earlier than the agent's last change, because API
processes on different machines read slightly different clocks; an explicit ``at`` is
checked strictly.

An action is a command (:mod:`.commands`): one small frozen type per :class:`AgentAction`
with only the details that action uses (``apply_agent_action(command=Hold())``);
:func:`command_for` builds one from an API request and refuses a detail the action does not
take.

Dialer calls (popped by :mod:`dialer.attended` with their call attempt) take a disposition:
with ``hang_up`` / ``finish_wrap`` / ``go_not_ready`` / ``schedule_callback`` or through
:func:`submit_disposition`, validated against the campaign's codes and stored as an
:class:`AgentDisposition` row in the same transaction as the action. The dial loop, in
another process, applies it to the attempt when the call is over: the database is the only
channel between the two. :func:`far_end_hung_up` is the loop's side: the callee hung up.

Where things live (import them from here):

- :mod:`._common`: errors, client scopes, the seat's snapshot and its API shapes
  (:func:`agent_from_seat`, :func:`agent_public`, :func:`log_public`), the seat lock and the
  writers of state-log rows and stream events, shared by the modules below;
- :mod:`.crud`: create, list, get, update, (de)activate agents;
- :mod:`.commands`: the command types, :data:`COMMANDS`, :func:`command_for`;
- :mod:`.actions`: :func:`apply_agent_action` and :class:`ActionOutcome`;
- :mod:`.dispositions`: :func:`submit_disposition` and the stored dispositions;
- :mod:`.pops`: the dial loop's side (pops, stream events, far end hung up, phone lost,
  expired wrap-ups, ready agents);
- :mod:`.reading`: the event stream, the current pop, the state log;
- :mod:`.callbacks`: an agent's scheduled callbacks and dialling one.
"""

from __future__ import annotations

from dialer.agent_service._common import (
    AgentBusy,
    AgentInactive,
    AgentNotFound,
    CallbackNotDialable,
    DispositionClosed,
    DuplicateAgent,
    NoDialerCall,
    agent_from_seat,
    agent_public,
    log_public,
)
from dialer.agent_service.actions import ActionOutcome, apply_agent_action
from dialer.agent_service.callbacks import ScheduledCallback, dial_callback, scheduled_callbacks
from dialer.agent_service.commands import (
    COMMANDS,
    DISPOSITION_ACTIONS,
    AgentCommand,
    CallFailed,
    CancelConsult,
    Connect,
    Dial,
    DispositionCommand,
    FinishWrap,
    GoNotReady,
    GoReady,
    HandToIvr,
    HangUp,
    Hold,
    InternalCall,
    OfferPreview,
    PhoneLost,
    ReconnectPhone,
    ScheduleCallback,
    SignIn,
    SignOut,
    SkipPreview,
    ThreeWay,
    Transfer,
    Unhold,
    command_for,
)
from dialer.agent_service.crud import (
    create_agent,
    get_agent,
    list_agents,
    set_agent_active,
    update_agent,
)
from dialer.agent_service.dispositions import (
    disposition_public,
    dispositions_for,
    submit_disposition,
)
from dialer.agent_service.pops import (
    dialer_action,
    expire_wrap_ups,
    far_end_hung_up,
    offer_preview,
    phone_lost,
    pop_call,
    post_event,
    ready_agents,
)
from dialer.agent_service.reading import (
    StreamEntry,
    current_pop,
    events_after,
    last_logged,
    state_log,
)

__all__ = [
    "COMMANDS",
    "DISPOSITION_ACTIONS",
    "ActionOutcome",
    "AgentBusy",
    "AgentCommand",
    "AgentInactive",
    "AgentNotFound",
    "CallFailed",
    "CallbackNotDialable",
    "CancelConsult",
    "Connect",
    "Dial",
    "DispositionClosed",
    "DispositionCommand",
    "DuplicateAgent",
    "FinishWrap",
    "GoNotReady",
    "GoReady",
    "HandToIvr",
    "HangUp",
    "Hold",
    "InternalCall",
    "NoDialerCall",
    "OfferPreview",
    "PhoneLost",
    "ReconnectPhone",
    "ScheduleCallback",
    "ScheduledCallback",
    "SignIn",
    "SignOut",
    "SkipPreview",
    "StreamEntry",
    "ThreeWay",
    "Transfer",
    "Unhold",
    "agent_from_seat",
    "agent_public",
    "apply_agent_action",
    "command_for",
    "create_agent",
    "current_pop",
    "dial_callback",
    "dialer_action",
    "disposition_public",
    "dispositions_for",
    "events_after",
    "expire_wrap_ups",
    "far_end_hung_up",
    "get_agent",
    "last_logged",
    "list_agents",
    "log_public",
    "offer_preview",
    "phone_lost",
    "pop_call",
    "post_event",
    "ready_agents",
    "scheduled_callbacks",
    "set_agent_active",
    "state_log",
    "submit_disposition",
    "update_agent",
]
