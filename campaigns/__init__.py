"""Campaigns: lead lists and leads, campaigns and their lifecycle, pilot and full batches,
lead-in-campaign state, call attempts, dispositions, calling rules and dial-time compliance.

Modules: :mod:`campaigns.models` (tables and API shapes), :mod:`campaigns.rules` (pure calling
window / holiday / retry rules), :mod:`campaigns.lifecycle` (the status machine),
:mod:`campaigns.sampling` (seeded pilot samples), :mod:`campaigns.service` (CRUD, lifecycle,
batches, dispositions), :mod:`campaigns.hopper` (leasing and dial bookkeeping for the dialer),
:mod:`campaigns.attempts` (list/export/import, the feasibility feed), :mod:`campaigns.compliance`
(suppression and Ofcom checks). Errors: :mod:`campaigns.exceptions`.
"""

from campaigns.attempts import (
    AttemptFilter,
    export_attempts_csv,
    import_attempts_csv,
    lead_records,
    list_attempts,
    pilot_attempt_records,
)
from campaigns.exceptions import (
    AttemptFinished,
    AttemptsImportError,
    CampaignInputError,
    CampaignNotDialing,
    IllegalTransition,
    LeaseExpired,
)
from campaigns.hopper import (
    AttemptOutcome,
    Lease,
    NumberSuppressed,
    complete_attempt,
    lease_leads,
    record_attempt_start,
    release_expired_leases,
    release_lease,
    renew_lease,
)

__all__ = [
    "AttemptFilter",
    "AttemptFinished",
    "AttemptOutcome",
    "AttemptsImportError",
    "CampaignInputError",
    "CampaignNotDialing",
    "IllegalTransition",
    "Lease",
    "LeaseExpired",
    "NumberSuppressed",
    "complete_attempt",
    "export_attempts_csv",
    "import_attempts_csv",
    "lead_records",
    "lease_leads",
    "list_attempts",
    "pilot_attempt_records",
    "record_attempt_start",
    "release_expired_leases",
    "release_lease",
    "renew_lease",
]
