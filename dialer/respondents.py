"""Simulated respondents: the simulated person at the far end of an IVR call.

A respondent is asked (:class:`RespondentPrompt`) each time a prompt that expects DTMF is
played on a simulated call, and says what the person keys or whether they hang up
(:class:`RespondentReply`). These are simulation concepts, not telephony: a real gateway has a
real person at the far end. They live here so that the simulated gateway
(:mod:`dialer.simgateway`) and the IVR driver (:mod:`dialer.ivr`) both use them without the IVR
depending on the simulated gateway.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dialer.distributions import LogNormal, TimeDistribution
from dialer.gateway import CallParameters

__all__ = ["RandomRespondent", "Respondent", "RespondentPrompt", "RespondentReply"]


@dataclass(frozen=True, slots=True)
class RespondentPrompt:
    """What a simulated respondent is asked: the call, the prompt and a seeded generator."""

    call_id: str
    lead_id: str
    params: CallParameters
    message_id: str
    prompt_index: int
    rng: random.Random


@dataclass(frozen=True, slots=True)
class RespondentReply:
    """A respondent's reaction: key ``digits`` after ``delay_s``, or hang up (``digits=None``)."""

    digits: str | None
    delay_s: float = 0.0


Respondent = Callable[[RespondentPrompt], RespondentReply]
"""A simulated person answering IVR prompts (agentless surveys)."""


@dataclass(frozen=True, slots=True)
class RandomRespondent:
    """Keys one of ``choices`` after a sampled delay; breaks off with a fixed probability."""

    choices: Sequence[str] = ("1", "2", "3", "4", "5")
    break_off_probability: float = 0.03
    reply_delay: TimeDistribution = field(default_factory=lambda: LogNormal(3.0, 1.5))

    def __call__(self, prompt: RespondentPrompt) -> RespondentReply:
        """Answer one prompt."""
        delay = self.reply_delay.sample(prompt.rng)
        if prompt.rng.random() < self.break_off_probability:
            return RespondentReply(None, delay)
        return RespondentReply(prompt.rng.choice(list(self.choices)), delay)
