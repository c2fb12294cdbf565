"""Builders for campaign tests: clients, ready lead lists with leads, campaigns."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from campaigns.models import Campaign, CampaignCreate, Lead, LeadList, ListStatus
from campaigns.service import create_campaign
from core.admin import create_client

ALWAYS_OPEN = {
    day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def make_client(session: Session, name: str = "Acme") -> uuid.UUID:
    client = create_client(
        session=session, name=name, slug=f"{name.lower()}-{uuid.uuid4().hex[:8]}"
    )
    return client.id


def cn_number(i: int) -> str:
    return f"+86138{i:08d}"


def make_list(
    session: Session,
    client_id: uuid.UUID,
    count: int = 10,
    *,
    numbers: Sequence[str] | None = None,
    zones: Sequence[Sequence[str]] | None = None,
    attributes: Sequence[dict[str, str]] | None = None,
    phone_types: Sequence[str] | None = None,
    status: ListStatus = ListStatus.ready,
) -> tuple[LeadList, list[Lead]]:
    """A ready list whose leads have the given numbers / zones / attributes."""
    numbers = list(numbers) if numbers is not None else [cn_number(i) for i in range(count)]
    lead_list = LeadList(
        client_id=client_id,
        name="list",
        filename="list.csv",
        status=status,
        rows_total=len(numbers),
    )
    session.add(lead_list)
    session.flush()
    leads = []
    for i, number in enumerate(numbers):
        lead = Lead(
            client_id=client_id,
            list_id=lead_list.id,
            row_number=i + 2,
            phone_e164=number,
            phone_type=(phone_types[i] if phone_types else "mobile"),
            phone_region="CN",
            phone_region_desc="China",
            phone_timezones=list(zones[i]) if zones is not None else ["Asia/Shanghai"],
            phone_carrier="China Mobile",
            attributes=dict(attributes[i]) if attributes is not None else {"name": f"n{i}"},
        )
        session.add(lead)
        leads.append(lead)
    session.flush()
    return lead_list, leads


def make_campaign(
    session: Session, client_id: uuid.UUID, list_ids: Sequence[uuid.UUID], **settings: Any
) -> Campaign:
    """A draft campaign; calling windows default to always open so tests control time."""
    body = CampaignCreate.model_validate(
        {
            "name": settings.pop("name", "Test campaign"),
            "calling_windows": settings.pop("calling_windows", ALWAYS_OPEN),
            "fallback_timezone": settings.pop("fallback_timezone", "Asia/Shanghai"),
            "list_ids": list(list_ids),
            **settings,
        }
    )
    return create_campaign(session=session, client_id=client_id, campaign_in=body)


def run_campaign(session: Session, campaign: Campaign, pilot_size: int | None = None) -> Campaign:
    """Walk a draft campaign to ``running`` (through a pilot if ``pilot_size``)."""
    from campaigns.models import BatchCreate, BatchKind, CampaignStatus
    from campaigns.service import create_batch, transition_campaign

    size = pilot_size or 1
    create_batch(session=session, campaign=campaign, batch_in=BatchCreate(size=size, seed=1))
    for target in (
        CampaignStatus.piloting,
        CampaignStatus.pilot_done,
        CampaignStatus.quoted,
        CampaignStatus.approved,
    ):
        transition_campaign(session=session, campaign=campaign, target=target)
    create_batch(session=session, campaign=campaign, batch_in=BatchCreate(kind=BatchKind.full))
    transition_campaign(session=session, campaign=campaign, target=CampaignStatus.running)
    return campaign
