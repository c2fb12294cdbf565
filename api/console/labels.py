"""Labels that reach the templates as values (roles, statuses, states, actions): listed here
so catalog extraction sees them (``N_`` marks a string for translation without translating).
"""

from __future__ import annotations

__all__ = ["LABELS"]


def N_(text: str) -> str:
    return text


LABELS = (
    # roles
    N_("admin"), N_("operator"), N_("supervisor"), N_("sales"), N_("researcher"), N_("agent"),
    N_("client_user"),
    # campaign statuses and lifecycle actions
    N_("draft"), N_("piloting"), N_("pilot_done"), N_("quoted"), N_("approved"), N_("running"),
    N_("paused"), N_("pilot_paused"), N_("completed"), N_("cancelled"),
    N_("start-pilot"), N_("finish-pilot"), N_("quote"), N_("approve"), N_("start"), N_("pause"),
    N_("resume"), N_("stop"), N_("cancel"),
    # pacing modes, batches
    N_("preview"), N_("progressive"), N_("power"), N_("predictive"),
    N_("pilot"), N_("full"), N_("simple"), N_("stratified"), N_("all"),
    # lead states
    N_("new"), N_("scheduled"), N_("in_progress"), N_("final"),
    # attempts
    N_("started"), N_("finished"), N_("expired"),
    N_("no_answer"), N_("busy"), N_("failed"), N_("invalid_number"), N_("machine"),
    N_("abandoned"), N_("answered"), N_("converted"), N_("contacted"), N_("refused"),
    N_("callback"), N_("other"),
    # lists, reports, feasibility
    N_("uploaded"), N_("processing"), N_("ready"), N_("queued"),
    N_("go"), N_("go_with_conditions"), N_("no_go"), N_("contact"),
    # cleaning report: reject reasons and number types
    N_("empty"), N_("not_a_number"), N_("invalid_for_region"), N_("too_short"), N_("too_long"),
    N_("unsupported_type"), N_("duplicate"), N_("dnc"),
    N_("fixed_line"), N_("mobile"), N_("fixed_line_or_mobile"), N_("toll_free"),
    N_("premium_rate"), N_("shared_cost"), N_("voip"), N_("personal_number"), N_("pager"),
    N_("uan"), N_("voicemail"), N_("unknown"),
    # questionnaires, interviews
    N_("published"), N_("retired"), N_("error"), N_("warning"),
    N_("completed"), N_("suspended"), N_("broken_off"), N_("not_eligible"), N_("quota_full"),
    N_("test"),
    # agent states, actions, not-ready reasons
    N_("signed_out"), N_("signed_in"), N_("not_ready"), N_("previewing"), N_("dialing"),
    N_("on_call"), N_("on_hold"), N_("consulting"), N_("conference"), N_("wrap_up"),
    N_("talking"),
    N_("sign_in"), N_("sign_out"), N_("go_ready"), N_("go_not_ready"), N_("hold"), N_("unhold"),
    N_("hang_up"), N_("finish_wrap"), N_("schedule_callback"),
    N_("break"), N_("lunch"), N_("training"), N_("meeting"), N_("wrap_timeout"),
    N_("callee_hung_up"), N_("phone_lost"), N_("reconnect_phone"),
    # statements: contracts and statuses
    N_("service"), N_("seat_lease"), N_("issued"), N_("confirmed"), N_("disputed"), N_("paid"),
    N_("superseded"),
)  # fmt: skip
