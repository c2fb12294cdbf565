"""The default disposition vocabulary seeded into every new campaign.

Each entry carries the flags reports and rules read (contacted, human answered, final,
success, do-not-call, callback, abandoned), its retry rule (delay in minutes; how many times
this outcome may repeat before the lead is closed), the coarse outcome the feasibility model
uses, and the AAPOR final disposition code a survey campaign reports (AAPOR Standard
Definitions, telephone surveys).

``declined`` is a call the callee's side rejected while it rang (SIP 603 Decline: the person
pressed "decline", or a call-screening service refused us). Nobody was spoken to, so it is
not a refusal (AAPOR 2.11 needs a contact); it is AAPOR 3.15, "call blocking", eligibility
unknown. It is retried once after four hours (a declined ring is often a busy moment), then
the lead is closed rather than rung against the callee's wish again and again.
"""

from __future__ import annotations

from typing import Any

from campaigns.models import OutcomeClass

__all__ = ["DEFAULT_DISPOSITIONS"]

_O = OutcomeClass

#: code, label, outcome, flags, retry delay (min), per-disposition max, AAPOR code
DEFAULT_DISPOSITIONS: tuple[dict[str, Any], ...] = (
    {"code": "no_answer", "label": "No answer", "outcome": _O.no_answer,
     "retry_delay_minutes": 120, "aapor_code": "3.13"},
    {"code": "busy", "label": "Busy", "outcome": _O.busy,
     "retry_delay_minutes": 15, "max_attempts": 5, "aapor_code": "3.12"},
    {"code": "network_failure", "label": "Network failure / congestion", "outcome": _O.failed,
     "retry_delay_minutes": 30, "max_attempts": 3, "aapor_code": "3.16"},
    {"code": "declined", "label": "Declined by the callee's phone (SIP 603)",
     "outcome": _O.no_answer, "retry_delay_minutes": 240, "max_attempts": 2,
     "aapor_code": "3.15"},
    {"code": "invalid_number", "label": "Invalid / non-working number",
     "outcome": _O.invalid_number, "final": True, "aapor_code": "4.30"},
    {"code": "fax_modem", "label": "Fax or modem line", "outcome": _O.invalid_number,
     "final": True, "aapor_code": "4.20"},
    {"code": "answering_machine", "label": "Answering machine", "outcome": _O.machine,
     "retry_delay_minutes": 240, "aapor_code": "3.14"},
    {"code": "abandoned", "label": "Abandoned (answered, no agent free)",
     "outcome": _O.abandoned, "human_answered": True, "abandoned": True,
     "retry_delay_minutes": 60, "aapor_code": "3.90"},
    {"code": "refused", "label": "Refused", "outcome": _O.contact, "contacted": True,
     "human_answered": True, "final": True, "aapor_code": "2.11"},
    {"code": "callback_requested", "label": "Callback requested", "outcome": _O.contact,
     "contacted": True, "human_answered": True, "callback": True, "aapor_code": "2.21"},
    {"code": "dnc_request", "label": "Do-not-call request", "outcome": _O.contact,
     "contacted": True, "human_answered": True, "final": True, "dnc": True,
     "aapor_code": "2.11"},
    {"code": "not_eligible", "label": "Not eligible", "outcome": _O.contact,
     "contacted": True, "human_answered": True, "final": True, "aapor_code": "4.70"},
    {"code": "partial", "label": "Partial interview", "outcome": _O.contact, "contacted": True,
     "human_answered": True, "final": True, "aapor_code": "1.2"},
    {"code": "complete", "label": "Complete interview", "outcome": _O.contact,
     "contacted": True, "human_answered": True, "final": True, "success": True,
     "aapor_code": "1.1"},
    {"code": "sale", "label": "Sale", "outcome": _O.contact, "contacted": True,
     "human_answered": True, "final": True, "success": True, "aapor_code": "1.1"},
    {"code": "wrong_person", "label": "Wrong person / wrong number", "outcome": _O.contact,
     "human_answered": True, "final": True, "aapor_code": "4.70"},
    {"code": "language_barrier", "label": "Language barrier", "outcome": _O.contact,
     "contacted": True, "human_answered": True, "final": True, "aapor_code": "2.33"},
)  # fmt: skip
