"""The forgotten-password journey (seed ameli-forgot-password, issue 4).

Step 2 (NIR, birth date, CAPTCHA seen or heard) → step 3 (open your mailbox;
case 1: no validated email; case 2: too many mails) → step 4 (the link of the
mail, 30 minutes, once, the newest only) → step 5 (the new password and its
rules, :mod:`.password_policy`) → step 6 (confirmation page and mail).

:func:`init_app` registers the pages and their per-IP limits; the entry
endpoint is ``recovery.start``, linked from the login page.
"""

from __future__ import annotations

from flask import Flask

from .captcha import MAX_LENGTH as CAPTCHA_MAX_LENGTH
from .captcha import normalize as normalize_captcha_answer
from .views import bp
from .voice import ALPHABET as CAPTCHA_ALPHABET


class ConfigurationError(RuntimeError):
    pass


def check_settings(config) -> None:
    """Refuse settings that must never reach production, or that cannot work."""
    test_answer = config.get("IDP_CAPTCHA_TEST_ANSWER")
    if test_answer and not config.get("IDP_TESTING"):
        raise ConfigurationError("IDP_CAPTCHA_TEST_ANSWER is for tests only: it requires IDP_TESTING=1")
    if test_answer:
        # The sound reads the series character by character: each one needs its voice file.
        series = normalize_captcha_answer(test_answer)
        unsayable = "".join(sorted(set(series) - set(CAPTCHA_ALPHABET)))
        if not series or unsayable:
            raise ConfigurationError(
                f"IDP_CAPTCHA_TEST_ANSWER={test_answer!r}: "
                + (f"the voice cannot say {unsayable!r}; " if unsayable else "it has no character; ")
                + f"use only the characters {CAPTCHA_ALPHABET} (any case, spaces ignored)"
            )
    if not 4 <= config["IDP_CAPTCHA_LENGTH"] <= CAPTCHA_MAX_LENGTH:
        raise ConfigurationError(f"IDP_CAPTCHA_LENGTH must be between 4 and {CAPTCHA_MAX_LENGTH}")
    if not 1 <= config["IDP_PASSWORD_MIN_LENGTH"] <= config["IDP_PASSWORD_MAX_LENGTH"] <= 128:
        raise ConfigurationError("Password lengths: 1 <= IDP_PASSWORD_MIN_LENGTH <= IDP_PASSWORD_MAX_LENGTH <= 128")


def init_app(app: Flask) -> None:
    from . import ratelimit

    check_settings(app.config)
    app.register_blueprint(bp)
    ratelimit.init_app(app)


__all__ = ["bp", "init_app", "check_settings", "ConfigurationError"]
