"""The login pages: one URL that always shows the step the flow is at.

There is no URL for a later step, so none can be skipped; the browser's back
button lands on the current step, or on a clear page once the flow is over.
Silent steps (checks) are evaluated as soon as the journey reaches them.

Every POST answers with a 303 to this URL (Post/Redirect/Get): what it found is
kept on the flow (:mod:`.notice`), and a case page a silent check shows is shown
again by the GET, which evaluates that check again. So back and reload never
re-send a form.
"""

from __future__ import annotations

from typing import NamedTuple

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, generate_csrf

from .. import audit, limits, security_headers
from ..extensions import db
from ..mfa import devices, notices
from ..oidc.server import TemporarilyUnavailableError
from . import flow as flows
from . import notice, policy
from .journey import PAGE_NUMBERS, PAGE_TOTAL, method, methods, next_step
from .steps import PASSED, flow_client

bp = Blueprint("login", __name__, url_prefix="/connexion")


class Partner(NamedTuple):
    """What the login pages show of the relying party, from its registration."""

    name: str
    logo_uri: str | None
    client_uri: str | None


@bp.route("", methods=["GET", "POST"])
def step():
    flow = flows.current()
    if flow is None:
        return _no_flow()
    g.idp_login_for_account = flow.purpose == flows.ACCOUNT  # the pages name the space, not a partner
    # The partner named and « Annuler » offered on every page (login_page_context): read now, with the
    # flow, so that a page rendered after a failed statement (the 503 page) reads no row again.
    if flow.client is not None:
        g.idp_login_partner = Partner(flow.client.name, flow.client.logo_uri, flow.client.client_uri)
    if request.method == "POST":
        notice.clear(flow)  # a new form: the answer to the previous one is over
    # The flow's changes (user, steps passed, identifier) are written once, by the commit
    # that ends the request, not flushed again before every query of the steps that follow.
    with db.session.no_autoflush:
        current = next_step(flow)
        while current is not None:
            g.idp_login_step = current.name
            result = current.handle(flow)
            if result is not PASSED:
                _commit_if_written()
                if request.method == "POST" and not _is_redirect(result):
                    # A check reached by this form stops the login: its page is shown by the GET.
                    return notice.see_current_step(result[1] if isinstance(result, tuple) else 200)
                return result
            flow.passed = [*flow.passed, current.name]
            g.idp_login_advanced = True  # the checks reached now are recorded (steps.refuse)
            if current.raises_trust:
                flows.renew_identifier(flow)
            current = next_step(flow)
            if current is not None and not current.silent:
                # Post/Redirect/Get: the next page is shown by a fresh GET. One commit per request.
                db.session.commit()
                return redirect(url_for("login.step"), code=303)
        return _finish(flow)


@bp.errorhandler(CSRFError)
def form_expired(error):
    """A login form whose CSRF token expired: said on the current step's page by the GET (Post/Redirect/Get)."""
    flow = flows.current()
    if flow is None:
        return _no_flow()
    current = next_step(flow)
    if current is not None:
        notice.keep(flow, current.name, 400, error="csrf")
        db.session.commit()
    return notice.see_current_step(400)


def _is_redirect(result) -> bool:
    """A step's answer that is already a redirect (a rendered page is a string or a tuple)."""
    return getattr(result, "status_code", 200) // 100 == 3


def _no_flow():
    """No login in progress (expired, finished, no cookie): a POST is sent to the GET that says so."""
    if request.method == "POST":
        return notice.see_current_step(400)
    return render_template("login/no_flow.html"), 400


@bp.context_processor
def login_page_context() -> dict:
    """What every page of a login in progress shows: the partner site that asked for it, from its
    registration (name; logo and link only when registered), and the « Annuler » form's token."""
    partner = g.get("idp_login_partner")
    if partner is None and not g.get("idp_login_for_account"):
        return {}
    if partner is not None and partner.logo_uri:
        security_headers.allow_image(partner.logo_uri)
    return {"partner": partner, "login_csrf": generate_csrf,
            "step_position": PAGE_NUMBERS.get(g.get("idp_login_step")), "step_total": PAGE_TOTAL}


def _commit_if_written() -> None:
    """Commit what the step wrote; a page shown by a GET that changed nothing commits nothing.

    The steps write through the ORM on a GET (a trusted browser's last use), never
    through statements the session does not track; a POST always commits.
    """
    session = db.session
    if request.method != "GET" or session.new or session.dirty or session.deleted or audit.pending():
        session.commit()


@bp.route("/annuler", methods=["POST"])
def cancel():
    """The person gives up: the relying party gets ``access_denied``, or ``temporarily_unavailable``
    when the login stopped on our mail failure (decided from the flow, not from the request)."""
    flow = flows.current()
    response = None
    if flow is not None:
        kept = flow.notice or {}
        error = TemporarilyUnavailableError if kept.get("page") == "login/mail_failed.html" else None
        response = flows.cancel(flow, error)
    if response is None:
        return _no_flow()
    return response


@bp.route("/aide")
def help_page():
    """The seed's FAQ."""
    from ..mfa.codes import lifetime_minutes

    return render_template("login/help.html", code_minutes=lifetime_minutes())


def _finish(flow):
    amr, acr = methods(flow)
    key = policy.user_key(flow.user_id)
    if "code" not in flow.passed:  # a right code has released this counter already (codes.verify)
        limits.reset(policy.code_quota(), key, policy.code_failures())  # a success resets the counters
    else:
        limits.reset(policy.code_quota(), key)
    if flow.remember_device:
        devices.trust(flow.user_id)
    # Written by the commit that saves the authorization code, with the login; a double submit
    # that finds the flow closed rolls them back with everything else (see audit._drop_pending).
    client_id = flow_client(flow)
    if flow.remember_device:
        audit.record("trusted_device_added", user_id=flow.user_id, client_id=client_id)
    detail = {"acr": acr, "amr": amr, "method": method(flow)}
    if flow.purpose == flows.ACCOUNT:
        detail["purpose"] = flows.ACCOUNT
    audit.record("login_succeeded", user_id=flow.user_id, nir=flow.user.nir, client_id=client_id, detail=detail)
    # « Nouvelle connexion » for a browser not trusted before: made while the person is loaded, sent
    # once the login is committed; its failure never fails the login.
    new_login_mail = notices.new_login(flow.user, flow.client_id) if "device" not in flow.passed else None
    response = flows.complete(flow, amr, acr)
    db.session.commit()
    if response is None:  # a double submit finished it first: its device row was rolled back
        g.pop("idp_device_cookie", None)
        return _no_flow()
    if new_login_mail is not None:
        new_login_mail.send()
    return response
