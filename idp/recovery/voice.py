"""The spoken CAPTCHA (RGAA 1.5): the series read out in French, without a speech engine.

The voice files are made once by ``scripts/make_captcha_voice.py`` (espeak-ng,
voice ``fr``) and kept in the repository under ``idp/recovery/voice/``: one WAV
per character of :data:`ALPHABET`, plus two phrases. At run time they are only
concatenated with Python's :mod:`wave`, with silences of random length between
them, so that the server needs no speech engine and no outside service.
"""

from __future__ import annotations

import functools
import io
import secrets
import wave
from pathlib import Path

#: Upper-case letters and digits without the characters that can be mistaken for
#: another, in the image or read out in French: 0/O/Q/D, 1/I/L, 2/Z, 5/S, 6/G,
#: 8/B, U/V, and the letters whose French names sound alike (« bé, cé, dé, pé, té,
#: vé », « èm, èn ») keep one representative each (T and M).
ALPHABET = "AEFHJKMRTUWXY23456789"

VOICE_DIR = Path(__file__).parent / "voice"
RATE = 16000  # Hz, mono, 16-bit PCM
INTRO = "_intro"  # « Recopiez les caractères suivants. »
REPEAT = "_repeat"  # « Je répète. »
PHRASES = {INTRO: "Recopiez les caractères suivants.", REPEAT: "Je répète."}


class VoiceError(RuntimeError):
    """A voice file is missing or not in the expected format (run scripts/make_captcha_voice.py)."""


@functools.cache
def clip(name: str) -> bytes:
    """The PCM frames of one voice file."""
    path = VOICE_DIR / f"{name}.wav"
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, RATE):
                raise VoiceError(f"{path.name}: expected 16 kHz mono 16-bit PCM")
            return w.readframes(w.getnframes())
    except (FileNotFoundError, wave.Error, EOFError) as exc:
        raise VoiceError(f"Cannot read voice file {path.name}: {exc}") from exc


def _silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(RATE * seconds)


def speak(series: str) -> bytes:
    """A WAV file reading ``series`` out, twice, character by character."""
    rng = secrets.SystemRandom()
    parts = [_silence(0.3), clip(INTRO), _silence(0.6)]
    for round_ in range(2):
        if round_:
            parts += [_silence(0.5), clip(REPEAT), _silence(0.6)]
        for char in series:
            parts += [clip(char), _silence(rng.uniform(0.45, 0.8))]
    parts.append(_silence(0.3))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(parts))
    return out.getvalue()
