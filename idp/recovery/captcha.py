"""The CAPTCHA of step 2: a series of characters to copy, seen or heard.

A series is found by a random 256-bit *handle*, carried by the form and by the
image and sound URLs. Its characters are never stored: they are derived from
the handle under a server key (HMAC), so the image and the sound can be made
again on demand and say the same thing, while the database keeps only the keyed
hash of the handle and the keyed hash of the answer. A series is valid
``CAPTCHA_LIFETIME`` seconds and answered once: checking it consumes it, right
or wrong, by one conditional UPDATE, and a new series is shown.

Images come from the ``captcha`` package (ImageCaptcha), sounds from
:mod:`.voice`; both are made on the server, offline.
"""

from __future__ import annotations

import enum
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from .. import crypto
from ..extensions import db
from ..models import utcnow
from ..models.recovery import CaptchaChallenge
from .voice import ALPHABET, speak

HANDLE_PURPOSE = "captcha-handle"
ANSWER_PURPOSE = "captcha-answer"
DERIVE_PURPOSE = "captcha-series"
MAX_HANDLE_LENGTH = 100
MAX_LENGTH = 32  # characters a series can have (bytes of an HMAC-SHA-256)
IMAGE_SIZE = (280, 80)


class Check(enum.Enum):
    OK = "ok"
    MISSING = "captcha_required"   # nothing typed
    WRONG = "captcha_wrong"        # typed, but not the series
    EXPIRED = "captcha_expired"    # too late, already answered, or unknown series


def lifetime_minutes() -> int:
    return max(1, current_app.config["IDP_CAPTCHA_LIFETIME"] // 60)


def series_for(handle: str) -> str:
    """The characters of the series of ``handle`` (or the test answer in tests)."""
    test_answer = current_app.config.get("IDP_CAPTCHA_TEST_ANSWER")
    if test_answer:
        return normalize(test_answer)
    length = current_app.config["IDP_CAPTCHA_LENGTH"]
    digest = bytes.fromhex(crypto.keyed_hash(DERIVE_PURPOSE, handle))
    # 32 bytes, one character per byte (MAX_LENGTH); the modulo bias (256 % 21) does not matter here.
    return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:length])


def normalize(answer: str) -> str:
    """What a person types: any case, spaces allowed."""
    return "".join((answer or "").split()).upper()


def _answer_hash(handle_hash: str, answer: str) -> str:
    return crypto.keyed_hash(ANSWER_PURPOSE, f"{handle_hash}:{normalize(answer)}")


def issue() -> str:
    """A new series; returns its handle. Forgets series expired long ago."""
    now = utcnow()
    db.session.execute(delete(CaptchaChallenge).where(CaptchaChallenge.expires_at < now - timedelta(hours=1)))
    handle = crypto.random_token(32)
    handle_hash = crypto.keyed_hash(HANDLE_PURPOSE, handle)
    db.session.add(CaptchaChallenge(
        handle_hash=handle_hash,
        answer_hash=_answer_hash(handle_hash, series_for(handle)),
        expires_at=now + timedelta(seconds=current_app.config["IDP_CAPTCHA_LIFETIME"]),
    ))
    db.session.commit()
    return handle


def _find(handle: str | None) -> CaptchaChallenge | None:
    if not handle or len(handle) > MAX_HANDLE_LENGTH:
        return None
    return db.session.scalar(
        select(CaptchaChallenge).where(CaptchaChallenge.handle_hash == crypto.keyed_hash(HANDLE_PURPOSE, handle))
    )


def live(handle: str | None) -> bool:
    """The series can still be shown and answered."""
    found = _find(handle)
    return found is not None and found.used_at is None and utcnow() < found.expires_at


def check(handle: str | None, answer: str | None) -> Check:
    """Check an answer and consume the series, whatever the outcome (single use)."""
    found = _find(handle)
    if found is None:
        return Check.EXPIRED
    consumed = db.session.execute(
        update(CaptchaChallenge)
        .where(CaptchaChallenge.id == found.id, CaptchaChallenge.used_at.is_(None),
               CaptchaChallenge.expires_at > utcnow())
        .values(used_at=utcnow())
    ).rowcount == 1
    db.session.commit()
    if not consumed:
        return Check.EXPIRED
    if not normalize(answer or ""):
        return Check.MISSING
    if not crypto.equals(_answer_hash(found.handle_hash, answer), found.answer_hash):
        return Check.WRONG
    return Check.OK


def discard(handle: str | None) -> None:
    """Consume a series that the person replaced by a new one."""
    found = _find(handle)
    if found is not None:
        db.session.execute(
            update(CaptchaChallenge).where(CaptchaChallenge.id == found.id, CaptchaChallenge.used_at.is_(None))
            .values(used_at=utcnow())
        )
        db.session.commit()


def _generator():
    """ImageCaptcha with milder distortions than its defaults: a person must read it at first sight."""
    from captcha.image import ImageCaptcha

    class Generator(ImageCaptcha):
        character_rotate = (-12, 12)  # more turns a 7 into a 1
        character_warp_dx = (0.1, 0.2)
        character_warp_dy = (0.1, 0.2)
        word_space_probability = 0.85  # a space before 15 % of the characters
        word_offset_dx = 0.05  # little overlap between characters

    return Generator(width=IMAGE_SIZE[0], height=IMAGE_SIZE[1], font_sizes=(44, 48, 52))


def image(handle: str) -> bytes:
    """The PNG of the series: dark blue characters on white.

    ImageCaptcha makes a character as opaque as its colour is light, so the
    series is drawn white on black, then mapped to dark blue on white.
    """
    import io

    from PIL import Image, ImageOps

    drawn = _generator().generate(series_for(handle), format="png", bg_color=(0, 0, 0), fg_color=(255, 255, 255))
    grey = Image.open(drawn).convert("L")
    out = io.BytesIO()
    ImageOps.colorize(grey, black=(255, 255, 255), white=(8, 45, 107)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def audio(handle: str) -> bytes:
    """The WAV of the series read out in French, twice."""
    return speak(series_for(handle))
