"""Collecting a real caller's keys one at a time (dialer.ivr_calls) for the survey engine:
terminator, digit count, the pause after the last key, barge-in, hang-up and goodbye."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dialer.gateway import CallParameters, DtmfReceived, HangupParty, HungUp, MessageFinished
from dialer.ivr import SurveyIvr
from dialer.ivr_calls import IvrCalls
from surveys.engine import InterviewEngine
from surveys.schema import parse_questionnaire

DOC = {
    "id": "t",
    "title": {"en": "T"},
    "languages": ["en"],
    "choice_lists": {"yn": [{"value": "yes", "label": {"en": "Yes"}},
                            {"value": "no", "label": {"en": "No"}}]},
    "questions": [
        {"name": "likes", "type": "single_choice", "choices": "yn", "required": True,
         "label": {"en": "Do you like tea?"}},
        {"name": "cups", "type": "integer", "min": 0, "max": 99, "required": True,
         "label": {"en": "How many cups a day?"}},
    ],
}  # fmt: skip
PARAMS = CallParameters("+862100000000", "+8613900000001", None, None)
IDS = {"campaign_id": "camp", "lead_id": "lead-1", "attempt_id": "att-1"}


@dataclass
class Line:
    """The gateway side the IVR uses: what it was asked to play, and hang-ups."""

    played: list[dict[str, Any]] = field(default_factory=list)
    hung_up: list[str] = field(default_factory=list)

    def play_message(self, call_id: str, message_id: str, **kwargs: Any) -> None:
        self.played.append({"call_id": call_id, "message_id": message_id, **kwargs})

    def hang_up(self, call_id: str, *, now: float, by: HangupParty = HangupParty.SYSTEM) -> None:
        self.hung_up.append(call_id)


def _key(digits: str, at: float) -> DtmfReceived:
    return DtmfReceived(call_id="c1", at_s=at, params=PARAMS, **IDS, digits=digits)


def _started() -> tuple[Line, SurveyIvr, IvrCalls]:
    line = Line()
    driver = SurveyIvr(InterviewEngine(parse_questionnaire(DOC)), language="en")
    calls = IvrCalls(line, driver, inter_digit_timeout_s=3.0)  # type: ignore[arg-type]
    calls.start("c1", "lead-1", "att-1", 0.0)
    return line, driver, calls


def test_keys_are_collected_until_the_answer_is_complete() -> None:
    line, driver, calls = _started()
    first = line.played[-1]
    assert first["message_id"] == "ivr-likes"
    assert "Do you like tea?" in first["text"]
    assert first["language"] == "en"
    assert first["expect_dtmf"] is True
    calls.handle(_key("1", 1.0), 1.0)  # one key is a whole choice answer
    assert line.played[-1]["message_id"] == "ivr-cups"
    calls.handle(_key("1", 2.0), 2.0)
    calls.handle(_key("2", 2.5), 2.5)
    assert line.played[-1]["message_id"] == "ivr-cups"  # still keying: no re-prompt yet
    calls.tick(4.0)
    assert len(line.played) == 2  # 1.5 s after the last key: still waiting
    calls.tick(5.6)  # 3 s after the last key: the answer is 12
    assert line.played[-1]["message_id"] == "ivr-goodbye"
    [done] = driver.finished()
    assert done.state.answers["cups"].value == 12
    calls.handle(
        MessageFinished(call_id="c1", at_s=7.0, params=PARAMS, **IDS, message_id="ivr-goodbye"), 7.0
    )
    assert line.hung_up == ["c1"]
    assert not calls.active


def test_the_terminator_submits_at_once_and_bad_keys_are_re_prompted() -> None:
    line, driver, calls = _started()
    calls.handle(_key("7", 1.0), 1.0)  # not an option: said so, asked again
    assert line.played[-1]["message_id"] == "ivr-likes-retry"
    calls.handle(_key("2", 2.0), 2.0)
    for i, key in enumerate("42#"):
        calls.handle(_key(key, 3.0 + i / 10), 3.0 + i / 10)
    assert line.played[-1]["message_id"] == "ivr-goodbye"
    [done] = driver.finished()
    assert done.state.answers["likes"].value == "no"
    assert done.state.answers["cups"].value == 42


def test_a_caller_who_hangs_up_breaks_the_interview_off() -> None:
    line, driver, calls = _started()
    calls.handle(_key("1", 1.0), 1.0)
    assert calls.handle(
        HungUp(call_id="c1", at_s=2.0, params=PARAMS, **IDS, by=HangupParty.CALLEE), 2.0
    )
    [done] = driver.finished()
    assert done.outcome == "broken_off"
    assert not calls.active
    assert line.hung_up == []  # the caller already hung up
    assert not calls.handle(_key("1", 3.0), 3.0)  # not an IVR call any more
