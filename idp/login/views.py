"""The login pages: one URL that always shows the step the flow is at.

There is no URL for a later step, so none can be skipped; the browser's back
button lands on the current step, or on a clear page once the flow is over.
Silent steps (checks) are evaluated as soon as the journey reaches them.
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from .. import audit, limits
from ..extensions import db
from ..mfa import devices, notices
from . import flow as flows
from . import policy
from .journey import method, methods, next_step
from .steps import PASSED, flow_client

bp = Blueprint("login", __name__, url_prefix="/connexion")


@bp.route("", methods=["GET", "POST"])
def step():
    flow = flows.current()
    if flow is None:
        return render_template("login/no_flow.html"), 400
    g.idp_login_for_account = flow.purpose == flows.ACCOUNT  # the pages name the space, not a partner
    # The flow's changes (user, steps passed, identifier) are written once, by the commit
    # that ends the request, not flushed again before every query of the steps that follow.
    with db.session.no_autoflush:
        current = next_step(flow)
        while current is not None:
            result = current.handle(flow)
            if result is not PASSED:
                _commit_if_written()
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
    """The person gives up: the relying party gets ``access_denied``."""
    flow = flows.current()
    response = flows.cancel(flow) if flow is not None else None
    if response is None:
        return render_template("login/no_flow.html"), 400
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
    notice = notices.new_login(flow.user, flow.client_id) if "device" not in flow.passed else None
    response = flows.complete(flow, amr, acr)
    db.session.commit()
    if response is None:  # a double submit finished it first: its device row was rolled back
        g.pop("idp_device_cookie", None)
        return render_template("login/no_flow.html"), 400
    if notice is not None:
        notice.send()
    return response
