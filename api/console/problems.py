# ruff: noqa: E501  (one sentence per line reads better than wrapped strings)
"""What a refused request means, in the console user's language.

The services explain an error in English, naming the object and the fix ("the callback is not
due yet; dial it at the agreed time"); those sentences are built where the error happens and
carry names and values, so they stay as they are and are shown as the details. Every error
also has a stable ``code`` (the problem type of the API); this module gives each code a
translated sentence saying what went wrong and what to do, which the console shows first.
A code without its own sentence falls back to the sentence of its kind (HTTP status).
"""

from __future__ import annotations

from core.errors import PilotdialError

__all__ = ["PROBLEM_TEXT", "STATUS_TEXT", "explanation"]


def N_(text: str) -> str:
    return text


#: One sentence per problem code (translated through the console's catalogs).
PROBLEM_TEXT: dict[str, str] = {
    "invalid-input": N_("Some of the input is not valid. Correct the field named below and try again."),
    "not-found": N_("This does not exist, or it belongs to another client."),
    "conflict": N_("This is not possible in the object's current state."),
    "forbidden": N_("Your role may not do this. Ask an administrator if you need it."),
    "payload-too-large": N_("The file is larger than allowed. Split it or remove unused sheets and columns."),
    "unavailable": N_("A service Pilotdial needs is not reachable right now. Nothing was changed; try again in a moment."),
    "queue-unavailable": N_("The job queue is not reachable right now. Nothing was queued; try again in a moment."),
    "schema-out-of-date": N_("The database needs an upgrade. An administrator must run: pilotdial db upgrade."),
    "config": N_("Pilotdial is configured wrongly. An administrator must fix the setting named below."),
    "csrf-rejected": N_("The form has expired or did not come from this console. Reload the page and send it again."),
    "login-failed": N_("The user name or password is wrong, or the account is disabled."),
    "login-throttled": N_("Too many failed sign-ins. Wait a few minutes before trying again."),
    "dial-refused": N_("This number may not be dialed: it is on a do-not-call list."),
    "number-suppressed": N_("This number is on a do-not-call list and was not dialed."),
    "lead-not-callable": N_("This lead cannot be called now. The reason is given below."),
    "illegal-transition": N_("The campaign cannot take this step from its current state. Use one of the buttons shown for it."),
    "campaign-not-dialing": N_("The campaign is not dialing now. Start or resume it first."),
    "lease-expired": N_("Another dialer process took over this campaign. Reload the page."),
    "attempt-finished": N_("This call attempt is already finished."),
    "attempts-import": N_("The attempts file could not be imported. Correct the rows named below."),
    "duplicate-agent": N_("An agent with this code already exists. Choose another code."),
    "agent-inactive": N_("This agent seat is deactivated. Reactivate it on the agents page first."),
    "agent-busy": N_("The agent is busy with a call. Wait until the call and its wrap-up are over."),
    "callback-not-dialable": N_("This callback cannot be dialed now. Check its time and the lead's calling hours."),
    "no-dialer-call": N_("There is no call from the dialer for this agent now."),
    "disposition-closed": N_("The result of this call is already recorded."),
    "invalid-scenario": N_("The simulation settings are not valid. Correct the field named below."),
    "invalid-policy": N_("The pacing settings are not valid. Correct the field named below."),
    "invalid-agent-action": N_("This agent action is not valid. Check the fields named below."),
    "illegal-agent-transition": N_("The agent cannot do this in the current state. Use one of the buttons shown."),
    "gateway": N_("The telephone gateway refused the request. The details say why."),
    "unknown-call": N_("The telephone gateway does not know this call any more; it has ended."),
    "live-dialing-unavailable": N_("Live dialing cannot start for this campaign. The details say what is missing."),
    "questionnaire-invalid": N_("The questionnaire has errors. They are listed at the questions they concern."),
    "workbook-too-large": N_("The workbook is too large. Remove unused sheets, rows or columns."),
    "questionnaire-version-published": N_("A published version cannot change. Start a new draft from it to edit."),
    "questionnaire-version-not-published": N_("This version is not published yet. Publish it before interviewing."),
    "interview-state": N_("The interview is not in a state that allows this. Reload it."),
    "invalid-answer": N_("The answer is not accepted by the question's rules. Correct it and continue."),
    "report-input": N_("The report settings are not valid. Correct the field named below."),
    "statement-locked": N_("An issued statement cannot change. Issue a corrected version instead."),
    "statement-transition": N_("The statement cannot take this step from its current status."),
}  # fmt: skip

#: By HTTP status, for codes without a sentence of their own.
STATUS_TEXT: dict[int, str] = {
    403: PROBLEM_TEXT["forbidden"],
    404: PROBLEM_TEXT["not-found"],
    409: PROBLEM_TEXT["conflict"],
    413: PROBLEM_TEXT["payload-too-large"],
    422: PROBLEM_TEXT["invalid-input"],
    503: PROBLEM_TEXT["unavailable"],
}


def explanation(code: str | None, status: int | None = None) -> str | None:
    """The untranslated sentence for ``code`` (or its status), None when there is none."""
    if code and code in PROBLEM_TEXT:
        return PROBLEM_TEXT[code]
    return STATUS_TEXT.get(status) if status is not None else None


def status_of(exc: PilotdialError) -> int | None:
    """The HTTP status the API gives ``exc`` (for the fallback sentence)."""
    from api.errors import STATUS_BY_ERROR

    return next((s for cls, s in STATUS_BY_ERROR if isinstance(exc, cls)), None)
