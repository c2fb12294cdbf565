"""Spoken prompts for messages nobody recorded: text-to-speech with espeak-ng, cached.

An IVR questionnaire has a question per screen in every language it offers, and a
researcher who edits a label should not have to record it again before a test call. When
the gateway is asked to play a message it has no WAV for and the request carries the
message's text (:meth:`dialer.gateway.TelephonyGateway.play_message`), :class:`Speech`
renders the text once with ``espeak-ng`` in the language's voice, resampled to the
telephone's 8 kHz, and keeps the file under its cache directory named by a hash of the
text, the voice and the speed: the same prompt is rendered once per machine, and a changed
label is a new file. A call centre that wants real voices records WAVs under the message
ids instead (``<messages dir>/ivr-<question>.wav``); those always win.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dialer.sip.media import MediaError, load_audio, write_wav

__all__ = ["VOICES", "Speech", "SpeechError", "voice_for"]

#: espeak-ng voice per language tag (Traditional Chinese callers in Taiwan hear Mandarin;
#: pass ``yue`` explicitly for Cantonese).
VOICES: dict[str, str] = {
    "zh-Hans": "cmn",
    "zh-Hant": "cmn",
    "zh": "cmn",
    "zh-CN": "cmn",
    "zh-TW": "cmn",
    "zh-HK": "yue",
    "yue": "yue",
    "en": "en",
}


class SpeechError(Exception):
    """The text could not be spoken (espeak-ng missing or failing); says how to fix it."""


def voice_for(language: str | None) -> str:
    """The espeak-ng voice for a language tag: known tags, else the primary subtag."""
    if not language:
        return "en"
    if language in VOICES:
        return VOICES[language]
    return VOICES.get(language.split("-", 1)[0], language.split("-", 1)[0].lower())


@dataclass
class Speech:
    """Renders text to 8 kHz mono WAVs under ``cache_dir`` (one file per text and voice)."""

    cache_dir: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "pilotdial-speech"
    )
    words_per_minute: int = 150
    executable: str = "espeak-ng"
    timeout_s: float = 20.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def path_for(self, text: str, language: str | None) -> Path:
        """Where the rendering of ``text`` in ``language`` is (or will be) kept."""
        voice = voice_for(language)
        key = hashlib.sha256(f"{voice}\0{self.words_per_minute}\0{text}".encode()).hexdigest()
        return self.cache_dir / f"{voice}-{key[:32]}.wav"

    def render(self, text: str, language: str | None = None) -> Path:
        """The WAV saying ``text`` (rendered now unless a previous call did)."""
        text = " ".join(text.split())
        if not text:
            raise SpeechError("there is no text to speak; give the message a text or a WAV")
        target = self.path_for(text, language)
        if target.exists():
            return target
        binary = shutil.which(self.executable)
        if binary is None:
            raise SpeechError(
                f"{self.executable} is not installed, so the message cannot be spoken; install "
                "it (apt-get install espeak-ng) or record a WAV for the message id"
            )
        with self._lock:
            if target.exists():
                return target
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, raw_name = tempfile.mkstemp(suffix=".wav", dir=self.cache_dir)
            os.close(fd)
            raw = Path(raw_name)
            try:
                command = [binary, "-v", voice_for(language), "-s", str(self.words_per_minute)]
                done = subprocess.run(  # noqa: S603 (a fixed program, the text as one argument)
                    [*command, "-w", str(raw), "--", text],
                    capture_output=True,
                    timeout=self.timeout_s,
                    check=False,
                )
                if done.returncode != 0:
                    message = done.stderr.decode(errors="replace").strip()
                    raise SpeechError(
                        f"{self.executable} failed for voice {voice_for(language)!r}: "
                        f"{message or 'exit ' + str(done.returncode)}"
                    )
                samples = load_audio(raw)  # espeak-ng writes 22.05 kHz: to 8 kHz
                write_wav(target, samples)  # atomic: another process never reads half a file
            except (MediaError, subprocess.TimeoutExpired, OSError) as exc:
                raise SpeechError(f"the message could not be spoken: {exc}") from exc
            finally:
                raw.unlink(missing_ok=True)
        return target
