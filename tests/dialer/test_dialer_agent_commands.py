"""Agent commands: one type per action with only its details, and building them from a request."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from dialer import agent_service as svc
from dialer.agents import AgentAction, TransferKind, TransferTarget
from dialer.exceptions import AgentError

A = AgentAction
TARGET = TransferTarget(TransferKind.AGENT, "B002")


def test_every_action_has_its_command_type() -> None:
    assert set(svc.COMMANDS) == set(AgentAction)
    for action, cls in svc.COMMANDS.items():
        assert cls.action is action
        assert issubclass(cls, svc.AgentCommand)
        assert "reason" in {f.name for f in dataclasses.fields(cls)}  # logged with any action
    disposing = {A.GO_NOT_READY, A.HANG_UP, A.FINISH_WRAP, A.SCHEDULE_CALLBACK}
    assert disposing == svc.DISPOSITION_ACTIONS


def test_commands_are_frozen_and_keyword_only() -> None:
    hold = svc.Hold(reason="asked")
    with pytest.raises(dataclasses.FrozenInstanceError):
        hold.reason = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        svc.Dial("+8613812345678")  # type: ignore[misc]
    with pytest.raises(TypeError):
        svc.Transfer()  # type: ignore[call-arg]  # a transfer always has its target


def test_command_for_builds_the_actions_type_with_its_fields() -> None:
    client = uuid.uuid4()
    when = datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert svc.command_for(A.DIAL, number="139", client_id=client, lead_id="L1") == svc.Dial(
        number="139", client_id=client, lead_id="L1"
    )
    assert svc.command_for(A.TRANSFER, target=TARGET, reason="sales") == svc.Transfer(
        target=TARGET, reason="sales"
    )
    assert svc.command_for(
        A.SCHEDULE_CALLBACK, callback_at=when, to_group=True, disposition="callback_requested"
    ) == svc.ScheduleCallback(callback_at=when, to_group=True, disposition="callback_requested")
    assert svc.command_for(A.HANG_UP, disposition="sale") == svc.HangUp(disposition="sale")


def test_command_for_ignores_fields_not_given() -> None:
    # a request's unset fields: None, and callback_to "me" (to_group False)
    empty = {
        "target": None,
        "callback_at": None,
        "to_group": False,
        "call_id": None,
        "lead_id": None,
        "client_id": None,
        "number": None,
        "disposition": None,
    }
    for action, cls in svc.COMMANDS.items():
        if action is A.TRANSFER:
            continue
        assert svc.command_for(action, reason="r", **empty) == cls(reason="r")


def test_command_for_refuses_a_field_the_action_does_not_take() -> None:
    with pytest.raises(AgentError) as info:
        svc.command_for(A.HOLD, target=TARGET)
    assert str(info.value) == (
        "a transfer target (transfer) goes with internal_call, transfer, not with 'hold'"
    )
    assert info.value.extra == {"field": "transfer"}

    with pytest.raises(AgentError) as info:
        svc.command_for(A.HOLD, disposition="sale")
    assert str(info.value) == (
        "a disposition goes with finish_wrap, go_not_ready, hang_up, schedule_callback "
        "(or POST /agents/{id}/disposition), not with 'hold'"
    )
    assert info.value.extra == {"field": "disposition"}

    for action, field, value in (
        (A.GO_READY, "number", "139"),
        (A.HANG_UP, "callback_at", datetime(2030, 1, 1, tzinfo=UTC)),
        (A.FINISH_WRAP, "to_group", True),
        (A.OFFER_PREVIEW, "client_id", uuid.uuid4()),
        (A.HOLD, "call_id", "c1"),
    ):
        with pytest.raises(AgentError, match=f"not with '{action.value}'") as info:
            svc.command_for(action, **{field: value})
        assert info.value.extra == {"field": {"to_group": "callback_to"}.get(field, field)}


def test_command_for_names_a_missing_target_and_an_unknown_field() -> None:
    with pytest.raises(AgentError, match="'transfer' needs a transfer target") as info:
        svc.command_for(A.TRANSFER, reason="r")
    assert info.value.extra == {"field": "transfer"}
    assert svc.command_for(A.INTERNAL_CALL) == svc.InternalCall()  # checked when given
    with pytest.raises(TypeError, match="colour"):
        svc.command_for(A.HOLD, colour="red")
