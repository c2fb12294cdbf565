"""The deal on record: quote a campaign from its report, NO GO needs an override, approval
records who approved which quote at which prices, and the statement bills those prices."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import numpy as np

from core.queue import drain_embedded

from helpers import Tenant, make_tenant


def _campaign_with_reports(tenant: Tenant) -> tuple[str, str, str]:
    """A pilot_done campaign with two ready reports: one NO GO, one without targets."""
    from campaigns.models import Campaign, CampaignCreate, CampaignStatus, LeadList, ListStatus
    from campaigns.service import create_campaign
    from core.db import tenant_session
    from feasibility.service import create_run
    from feasibility.synthetic import dial_leads, make_lead_list

    synthetic = make_lead_list(600, seed=2)
    attempts = dial_leads(synthetic, np.arange(120), max_attempts=3, seed=2)
    with tenant_session([tenant.client_id]) as session:
        lead_list = LeadList(
            client_id=tenant.client_id, name="l", filename="l.csv", status=ListStatus.ready
        )
        session.add(lead_list)
        session.flush()
        campaign = create_campaign(
            session=session,
            client_id=tenant.client_id,
            campaign_in=CampaignCreate(name="deal", list_ids=[lead_list.id]),
        )
        campaign.status = CampaignStatus.pilot_done
        session.add(campaign)
        runs = []
        for targets in ({"conversions": 100_000}, {}):
            run = create_run(
                session=session,
                client_id=tenant.client_id,
                attempts=attempts.to_dict(orient="records"),
                leads=synthetic.leads.to_dict(orient="records"),
                targets=targets,
                campaign_id=campaign.id,
            )
            runs.append(str(run.id))
        campaign_id = str(session.get(Campaign, campaign.id).id)  # type: ignore[union-attr]
    drain_embedded()
    return campaign_id, runs[0], runs[1]


def test_quote_override_approval_and_billed_prices(api: Any) -> None:
    from core.admin import issue_key
    from core.db import system_session, tenant_session
    from core.models import Role
    from reports.prices import ramp_prices

    sales = make_tenant(api, "deal-desk", role="sales")
    with system_session() as sess:
        _key, plain = issue_key(
            session=sess,
            name="client approver",
            role=Role.client,
            client_refs=[str(sales.client_id)],
        )
    client = Tenant(client_id=sales.client_id, key=plain, http=sales.http)
    campaign_id, no_go_run, go_run = _campaign_with_reports(sales)
    run = sales.http.get(f"/feasibility-reports/{no_go_run}", headers=sales.headers()).json()
    assert run["verdict"] == "no_go", run

    refused = sales.http.post(
        f"/campaigns/{campaign_id}/quote", headers=sales.headers(), json={"run_id": no_go_run}
    )
    assert refused.status_code == 409
    assert "override_reason" in refused.json()["detail"]
    assert sales.http.get(f"/campaigns/{campaign_id}/quotes", headers=sales.headers()).json() == []
    campaign = sales.http.get(f"/campaigns/{campaign_id}", headers=sales.headers()).json()
    assert campaign["status"] == "pilot_done"  # nothing half stored

    # A client key cannot issue quotes.
    forbidden = client.http.post(
        f"/campaigns/{campaign_id}/quote", headers=client.headers(), json={"run_id": go_run}
    )
    assert forbidden.status_code == 403

    reason = "strategic client: we accept the volume risk for the first month"
    quoted = sales.http.post(
        f"/campaigns/{campaign_id}/quote",
        headers=sales.headers(),
        json={"run_id": no_go_run, "override_reason": reason},
    )
    assert quoted.status_code == 201, quoted.text
    quote = quoted.json()
    assert quote["override_reason"] == reason
    assert quote["verdict"] == "no_go"
    assert quote["quote_number"].startswith("PD-")
    recommended = run["report"]["quote"]["recommended"]
    assert quote["prices"] == {
        "1": f"{recommended['month_1']:.2f}",
        "2": f"{recommended['month_2']:.2f}",
        "3": f"{recommended['steady']:.2f}",
    }
    assert quote["valid_until"] > quote["quoted_at"][:10]
    campaign = sales.http.get(f"/campaigns/{campaign_id}", headers=sales.headers()).json()
    assert campaign["status"] == "quoted"

    wrong = client.http.post(
        f"/campaigns/{campaign_id}/approve", headers=client.headers(), json={"quote_number": "X"}
    )
    assert wrong.status_code == 422
    approved = client.http.post(
        f"/campaigns/{campaign_id}/approve",
        headers=client.headers(),
        json={"quote_number": quote["quote_number"]},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["approved_by"] == "client approver"
    assert approved.json()["approved_at"] is not None
    campaign = sales.http.get(f"/campaigns/{campaign_id}", headers=sales.headers()).json()
    assert campaign["status"] == "approved"
    again = client.http.post(
        f"/campaigns/{campaign_id}/approve",
        headers=client.headers(),
        json={"quote_number": quote["quote_number"]},
    )
    assert again.status_code == 409

    with tenant_session([sales.client_id]) as session:
        prices, source = ramp_prices(session, uuid.UUID(campaign_id))
    assert source == "signed quote"
    assert prices[1] == Decimal(quote["prices"]["1"])
    assert prices[3] == Decimal(quote["prices"]["3"])
