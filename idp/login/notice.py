"""The answer to a login form, kept on its flow and shown by the GETs that follow.

Every form of the login pages answers with a 303 to ``/connexion`` (Post/Redirect/Get),
so that the back button and a reload never re-send a form (Chromium's « Confirmer le
nouvel envoi du formulaire »). What the POST found — a wrong password, a field to fix,
a lock, a mail that could not leave, a new code sent — is kept server-side in
``LoginFlow.notice`` until the next form of the same login: every GET meanwhile shows
that same page, with its error and its status code (401, 429, 503...), so machines and
tests still read the rule that answered.

Nothing secret is kept: message keys, the field errors, the NIR typed (never the
password, never a code). A notice that carries an end (a lock) stops being shown once
that end has passed: the step is shown again.
"""

from __future__ import annotations

from datetime import datetime

from flask import redirect, render_template, url_for

#: The 303 that answers a login form names the status of the page it leads to (401 wrong password,
#: 429 a lock, 503 mail failure...): the rule that answered stays visible to a machine per request,
#: even when parallel forms of one login overwrite each other's notice.
OUTCOME_HEADER = "X-Login-Outcome"

from ..mail import MailError
from ..models import LoginFlow, utcnow


def keep(flow: LoginFlow, step: str, status: int, *, page: str | None = None, error: str | None = None,
         errors: dict | None = None, values: dict | None = None, until: datetime | None = None, **flags):
    """Keep the answer of this POST on ``flow`` and send the browser to the GET that shows it.

    ``page``: a case page that replaces the step's own (a lock, the mail failure);
    otherwise the step's page shows ``error`` (a message key or a code verdict) and
    the field ``errors`` with the ``values`` typed.
    """
    flow.notice = {
        "step": step, "status": status, "page": page, "error": error, "errors": errors or {},
        "values": values or {}, "until": until.isoformat() if until else None, "flags": flags,
    }
    return see_current_step(status)


def see_current_step(status: int | None = None):
    """303 to the one login URL: the GET shows where the login is (with the status it will answer)."""
    response = redirect(url_for("login.step"), code=303)
    if status is not None:
        response.headers[OUTCOME_HEADER] = str(status)
    return response


def current(flow: LoginFlow, step: str) -> dict | None:
    """The notice kept for ``step``, while it holds (a lock's end not passed)."""
    notice = flow.notice
    if not notice or notice.get("step") != step:
        return None
    if notice.get("until") and utcnow() >= until(notice):
        return None
    return notice


def until(notice: dict) -> datetime | None:
    return datetime.fromisoformat(notice["until"]) if notice.get("until") else None


def clear(flow: LoginFlow) -> None:
    """A new form of this login: the answer to the previous one is over (no write when there was none)."""
    if flow.notice is not None:
        flow.notice = None


def show_page(notice: dict, **context):
    """A case page kept as a notice (cases 3, 5, 6, the mail failure), with its status and headers."""
    headers = {}
    end = until(notice)
    if notice["status"] == 429 and end is not None:
        headers["Retry-After"] = str(max(1, int((end - utcnow()).total_seconds())))
    elif notice["status"] == 503:
        headers.update(MailError.headers())
    return render_template(notice["page"], until=end, notice=notice, **notice["flags"], **context), notice["status"], headers


def apply_to_form(form, notice: dict | None) -> None:
    """Put the kept field errors and values back on a fresh form (the GET after a refused POST)."""
    if not notice:
        return
    for name, value in notice["values"].items():
        getattr(form, name).data = value
    for name, messages in notice["errors"].items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = list(messages)
