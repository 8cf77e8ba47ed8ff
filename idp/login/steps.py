"""The steps of the login journey, each a small unit that passes or asks for input.

A step's :meth:`Step.handle` returns :data:`PASSED` to let the journey go on,
or a response (the step's page, with an error when there is one).
"""

from __future__ import annotations

from flask import render_template, request

from .. import crypto, nir
from ..extensions import db
from ..messages import msg
from ..models import LoginFlow, User
from .forms import PasswordForm

PASSED = object()


class Step:
    name: str = ""
    #: Authentication method reference (RFC 8176) this step contributes, if any.
    amr: str | None = None
    #: True when passing it should renew the flow identifier (trust went up).
    raises_trust: bool = False

    def applies(self, flow: LoginFlow) -> bool:
        return True

    def handle(self, flow: LoginFlow):
        raise NotImplementedError


class PasswordStep(Step):
    """Step 0 of the seed: NIR and password (case 4 on failure)."""

    name = "password"
    amr = "pwd"
    raises_trust = True

    def handle(self, flow: LoginFlow):
        form = PasswordForm()
        if request.method == "GET":
            form.nir.data = flow.login_hint or ""
            return render_template("login/step0_password.html", form=form)
        if not form.validate_on_submit():
            return render_template("login/step0_password.html", form=form), 400
        user = db.session.query(User).filter_by(nir=nir.normalize(form.nir.data)).one_or_none()
        # Always one Argon2 verification, known NIR or not: same answer, same time.
        if not crypto.verify_password(user.password_hash if user else None, form.password.data):
            return render_template("login/step0_password.html", form=form, error=msg("case4_wrong_credentials")), 401
        if crypto.needs_rehash(user.password_hash):
            user.password_hash = crypto.hash_password(form.password.data)
        flow.user_id = user.id
        return PASSED
