"""What a forgotten-password page shows after its form was posted (Post/Redirect/Get, issue 11).

Every POST of the journey answers 303 to a GET, so the browser's back button and
reload never ask to post the form again (Chromium's « Confirmer le nouvel envoi
du formulaire », ERR_CACHE_MISS). What that GET must show is kept here, in
Flask's signed session cookie, never in a URL:

* the errors of a form, and what was typed in it: *one-shot*, taken by the GET
  that shows them (a reload then shows the form afresh, with a new CAPTCHA). The
  NIR and the birth date are sealed (:func:`idp.crypto.seal`): the cookie is
  signed, not encrypted, and they are personal data. Passwords are never kept;
* the outcome of a submission (case 1, case 2, mail server down, password
  saved): kept until the next submission, so a reload shows the same page;
* the reset link the browser opened (step 4): the id of its row, which the
  signature makes unforgeable; the link's secret itself stays out of the page
  and the cookie. The row is checked again (live, newest, unused) at each use.
"""

from __future__ import annotations

from flask import session

from .. import crypto

IDENTITY = "rcv_identity"
OUTCOME = "rcv_outcome"
RESET = "rcv_reset"
PASSWORD_ERRORS = "rcv_password_errors"
SEAL_PURPOSE = "recovery-typed-identity"


# --- Step 2: the identity form ----------------------------------------------------------------

def keep_identity(nir: str, birth_date: str, errors: dict[str, str], notice: str | None = None,
                  focus_captcha: bool = False, form_error: str | None = None) -> None:
    """The step 2 form as posted, for the GET that follows (one-shot); ``notice`` and ``form_error``
    are keys of :mod:`idp.messages`."""
    session[IDENTITY] = {
        "typed": crypto.seal(SEAL_PURPOSE, "\n".join(((nir or "")[:64], (birth_date or "")[:64]))),
        "errors": errors,
        "notice": notice,
        "form_error": form_error,
        "focus_captcha": focus_captcha,
    }


def take_identity() -> dict | None:
    """What :func:`keep_identity` kept, once (``nir``, ``birth_date``, ``errors``, ``notice``, ``form_error``…)."""
    kept = session.pop(IDENTITY, None)
    if not isinstance(kept, dict):
        return None
    typed = crypto.unseal(SEAL_PURPOSE, str(kept.get("typed", "")))
    nir, _, birth_date = (typed or "").partition("\n")
    errors = kept.get("errors")
    return {"nir": nir, "birth_date": birth_date,
            "errors": {k: str(v) for k, v in errors.items()} if isinstance(errors, dict) else {},
            "notice": kept.get("notice"), "form_error": kept.get("form_error"),
            "focus_captcha": bool(kept.get("focus_captcha"))}


# --- Outcomes: the page a submission led to ------------------------------------------------------

def set_outcome(page: str, **details) -> None:
    session[OUTCOME] = {"page": page, **details}


def outcome(page: str) -> dict | None:
    """The details of the outcome ``page`` if it is the last submission's outcome (not taken: reload shows it)."""
    kept = session.get(OUTCOME)
    return kept if isinstance(kept, dict) and kept.get("page") == page else None


# --- Steps 4 and 5: the link opened, the new password's errors -----------------------------------

def keep_reset(reset_id: int) -> None:
    session[RESET] = reset_id


def reset_id() -> int | None:
    value = session.get(RESET)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def forget_reset() -> None:
    session.pop(RESET, None)
    session.pop(PASSWORD_ERRORS, None)


def keep_password_errors(errors: dict[str, str], broken: list[str] | None) -> None:
    """The errors of the new-password form (never the passwords typed), for the GET that follows."""
    session[PASSWORD_ERRORS] = {"errors": errors, "broken": broken}


def take_password_errors() -> tuple[dict[str, str], list[str] | None]:
    kept = session.pop(PASSWORD_ERRORS, None)
    if not isinstance(kept, dict):
        return {}, None
    errors, broken = kept.get("errors"), kept.get("broken")
    return ({k: str(v) for k, v in errors.items()} if isinstance(errors, dict) else {},
            [str(b) for b in broken] if isinstance(broken, list) else None)
