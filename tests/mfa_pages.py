"""Helpers for the tests of the second factor without the mailbox (issue 12).

The person enrols through the service API the security space calls
(:mod:`idp.mfa.totp`, :mod:`idp.mfa.recovery_codes`), with a TOTP the test computes
itself from the secret it was shown, as an authenticator app would.
"""

from __future__ import annotations

import time

import pyotp

from idp.extensions import db
from idp.mfa import recovery_codes, totp
from login_pages import step_of

PERIOD = 30


def settle(margin: float = 3.0) -> None:
    """Wait for the next time step when this one ends within ``margin`` seconds (no step change mid-test)."""
    left = PERIOD - time.time() % PERIOD
    if left < margin:
        time.sleep(left + 0.05)


def app_code(secret: str, steps: int = 0) -> str:
    """The code an app shows ``steps`` time steps from now."""
    return pyotp.TOTP(secret).at(time.time() + steps * PERIOD)


def enrol(user) -> tuple[str, list[str]]:
    """Enrol an app for ``user`` as the security space does; ``(secret, recovery codes)``.

    The confirmation uses the code of this time step: a login in the same step
    needs the next step's code (:func:`next_code`), a code being accepted once.
    """
    settle()
    enrolment = totp.begin_enrolment(user)
    db.session.commit()
    assert totp.confirm_enrolment(user, app_code(enrolment.secret_b32))
    codes = recovery_codes.generate(user)
    db.session.commit()
    return enrolment.secret_b32, codes


def next_code(secret: str) -> str:
    """A code not used yet: the next time step's (within the ±1 step of drift)."""
    return app_code(secret, 1)


def up_to_app_code(journey, user):
    """Start, password, « Utiliser mon application d'authentification »: the app code page."""
    page = journey.start()
    assert step_of(page) == "password"
    page = journey.password(user)
    assert step_of(page) == "factor-choice", page.text[:300]
    page = journey.post({"factor": "app"})
    assert step_of(page) == "app-code", page.text[:300]
    return page


def up_to_recovery_code(journey, user):
    up_to_app_code(journey, user)
    page = journey.post({"action": "recovery"})
    assert step_of(page) == "recovery-code", page.text[:300]
    return page
