"""What the multi-worker tests serve (`idp serve`): the real app, plus a count of secret checks.

``idp serve --app served_app:app`` (from ``tests/``) serves :func:`idp.create_app`
configured by the ``IDP_*`` variables the fixture sets. When
``IDP_TEST_CHECKS_FILE`` names a file, every password verification (Argon2) and
every security-code comparison appends one line to it (``password``,
``code``, or ``totp`` for an authenticator app's code), from every worker and
thread, so that a test can count how many secrets were really checked,
whatever answered the requests. Lines are written with one ``O_APPEND``
``write``, which the kernel keeps whole across processes.
"""

from __future__ import annotations

import functools
import logging
import os

from idp import create_app, crypto
from idp.mfa import codes, totp

if os.environ.get("IDP_TEST_LOG_LEVEL"):  # every log line, of the libraries too, to look for secrets in them
    logging.getLogger().setLevel(os.environ["IDP_TEST_LOG_LEVEL"])  # the app installs the handler (idp.ops.logs)

app = create_app()

_checks_file = os.environ.get("IDP_TEST_CHECKS_FILE")


def _counted(label: str, check):
    @functools.wraps(check)
    def counted(*args, **kwargs):
        fd = os.open(_checks_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{label}\n".encode())
        finally:
            os.close(fd)
        return check(*args, **kwargs)

    return counted


if _checks_file:
    crypto.verify_password = _counted("password", crypto.verify_password)
    codes.matches = _counted("code", codes.matches)
    totp._matching_step = _counted("totp", totp._matching_step)  # a TOTP compared (enrolment, login)
