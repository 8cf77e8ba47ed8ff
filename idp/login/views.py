"""The login pages: one URL that always shows the step the flow is at.

Going straight to a later step is impossible (there is no URL for it), and the
browser's back button lands on the current step or on a clear page.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from ..extensions import db
from . import flow as flows
from .journey import methods, next_step
from .steps import PASSED

bp = Blueprint("login", __name__, url_prefix="/connexion")


@bp.route("", methods=["GET", "POST"])
def step():
    flow = flows.current()
    if flow is None:
        return render_template("login/no_flow.html"), 400
    current = next_step(flow)
    if current is None:
        return _finish(flow)
    result = current.handle(flow)
    if result is not PASSED:
        db.session.commit()
        return result
    flow.passed = [*flow.passed, current.name]
    if current.raises_trust:
        flows.renew_identifier(flow)
    db.session.commit()
    if next_step(flow) is None:
        return _finish(flow)
    return redirect(url_for("login.step"), code=303)


@bp.route("/annuler", methods=["POST"])
def cancel():
    """The person gives up: the relying party gets ``access_denied``."""
    flow = flows.current()
    if flow is None:
        return render_template("login/no_flow.html"), 400
    response = flows.cancel(flow)
    if response is None:
        return render_template("login/no_flow.html"), 400
    return response


def _finish(flow):
    amr, acr = methods(flow)
    response = flows.complete(flow, amr, acr)
    if response is None:
        return render_template("login/no_flow.html"), 400
    return response

