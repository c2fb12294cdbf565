"""Pilot planning before a pilot: GET /campaigns/{id}/pilot-plan, from given rates or from the
client's past campaigns in the database."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from campaign_builders import make_campaign, make_list

from core.db import system_session, utcnow

from helpers import Tenant, make_tenant


def _campaign(tenant: Tenant, leads: int, offset: int = 0, **settings: Any) -> uuid.UUID:
    with system_session() as s:
        numbers = [f"+86139{offset + i:08d}" for i in range(leads)]
        lead_list, _ = make_list(s, tenant.client_id, numbers=numbers)
        return make_campaign(s, tenant.client_id, [lead_list.id], **settings).id


def _past_campaign(tenant: Tenant, leads: int, reached: int, valid: int) -> None:
    """A finished campaign: every lead dialled twice, ``reached`` of them contacted on the
    second attempt, ``valid`` of those contacts longer than the 15-second valid-call floor."""
    from campaigns.models import AttemptStatus, CallAttempt, OutcomeClass

    campaign_id = _campaign(tenant, leads, offset=50_000)
    with system_session() as s:
        from sqlmodel import col, select

        from campaigns.models import Lead

        lead_ids = list(
            s.exec(
                select(Lead.id).where(
                    Lead.client_id == tenant.client_id,
                    col(Lead.phone_e164).startswith("+861390005"),
                )
            )
        )
        assert len(lead_ids) == leads
        now = utcnow()
        for i, lead_id in enumerate(lead_ids):
            for attempt_no in (1, 2):
                contact = attempt_no == 2 and i < reached
                s.add(
                    CallAttempt(
                        client_id=tenant.client_id,
                        campaign_id=campaign_id,
                        lead_id=lead_id,
                        attempt_no=attempt_no,
                        idempotency_key=f"{lead_id}-{attempt_no}",
                        status=AttemptStatus.finished,
                        number_dialed="+8613900000000",
                        dialed_at=now - timedelta(days=3),
                        outcome=OutcomeClass.contact if contact else OutcomeClass.no_answer,
                        disposition="sale" if contact else "no_answer",
                        talk_s=(60.0 if i < valid else 10.0) if contact else None,
                    )
                )


def test_plan_from_given_rates_follows_the_poisson_precision(api: Any) -> None:
    sales = make_tenant(api, "planner", role="sales")
    campaign_id = _campaign(sales, 40, max_attempts=4)
    r = sales.http.get(
        f"/campaigns/{campaign_id}/pilot-plan",
        headers=sales.headers(),
        params={"contact_rate": 0.4, "valid_call_share": 0.75},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rates_from"] == "given"
    assert body["list_leads"] == 40
    # +-10 % at 90 % takes 271 valid calls: 904 leads, more than the list has
    assert body["plan"]["valid_calls_needed"] == 271
    assert body["plan"]["leads"] == 40
    assert body["plan"]["attempts_per_lead"] == 4  # the campaign's own limit
    assert "out of reach" in body["plan"]["note"]
    wider = sales.http.get(
        f"/campaigns/{campaign_id}/pilot-plan",
        headers=sales.headers(),
        params={"contact_rate": 0.4, "valid_call_share": 0.75, "precision": 0.5},
    ).json()
    assert wider["plan"]["valid_calls_needed"] == 11  # (1.645 / 0.5)^2 = 10.8
    assert wider["plan"]["leads"] == 37  # 11 / 0.3, within the list
    assert wider["plan"]["note"] == ""


def test_plan_from_the_clients_past_campaigns(api: Any) -> None:
    sales = make_tenant(api, "historian", role="sales")
    r = sales.http.get(f"/campaigns/{_campaign(sales, 10)}/pilot-plan", headers=sales.headers())
    assert r.status_code == 422  # no history yet: says which rates to give
    assert "contact_rate" in r.json()["detail"]

    _past_campaign(sales, leads=60, reached=30, valid=24)
    campaign_id = _campaign(sales, 5_000, offset=100_000)
    r = sales.http.get(f"/campaigns/{campaign_id}/pilot-plan", headers=sales.headers())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["contact_rate"] == 0.5  # 30 of 60 leads reached (distinct leads, not dials)
    assert body["valid_call_share"] == 0.8  # 24 of 30 contacts over 15 s
    assert "30 of 60 leads reached" in body["rates_from"]
    assert body["plan"]["leads"] == 678  # 271 / (0.5 x 0.8) = 677.5


def test_plan_is_scoped_and_role_checked(api: Any) -> None:
    sales = make_tenant(api, "seller", role="sales")
    campaign_id = _campaign(sales, 5)
    other = make_tenant(api, "nosy", role="sales")
    r = other.http.get(
        f"/campaigns/{campaign_id}/pilot-plan",
        headers=other.headers(),
        params={"contact_rate": 0.4, "valid_call_share": 0.75},
    )
    assert r.status_code == 404
    client = make_tenant(api, "viewer", role="client")
    own = _campaign(client, 5, offset=200_000)
    r = client.http.get(
        f"/campaigns/{own}/pilot-plan",
        headers=client.headers(),
        params={"contact_rate": 0.4, "valid_call_share": 0.75},
    )
    assert r.status_code == 403
