"""The steps of the login journey, each a small unit that passes, fails or asks.

A step's :meth:`Step.handle` returns :data:`PASSED` to let the journey go on, or
a response: its page asking for input, or a page explaining why the login stops
here (a case of the seed). A *silent* step asks for nothing: it is evaluated as
soon as the journey reaches it. The order is data, in :mod:`.journey`.

The checks that reveal something about an account (cases 1, 5, 7 and 8) come
after the password step, so they tell nothing to someone who does not know it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from flask import render_template, request
from sqlalchemy import bindparam, select

from .. import crypto, limits, nir
from ..extensions import db
from ..messages import msg
from ..models import LoginFlow, User, utcnow
from . import policy
from .forms import PasswordForm

PASSED = object()

_USER_BY_NIR = select(User).where(User.nir == bindparam("nir"))


def lock_page(template: str, until):
    """A page saying until when something is locked (cases 3, 5, 6): 429 with ``Retry-After``."""
    seconds = max(1, int((until - utcnow()).total_seconds()))
    return render_template(template, until=until), 429, {"Retry-After": str(seconds)}


class Step(ABC):
    name: str = ""
    #: Authentication method reference (RFC 8176) this step contributes, if any.
    amr: str | None = None
    #: Passing it raises the trust in the flow: the flow identifier is renewed (ASVS 7.2.4).
    raises_trust: bool = False
    #: Evaluated without asking anything.
    silent: bool = False

    def applies(self, flow: LoginFlow) -> bool:
        return True

    @abstractmethod
    def handle(self, flow: LoginFlow):
        """``PASSED``, or the response to send (a page asking for input, or a case page)."""


class PasswordStep(Step):
    """Step 0: NIR and password. Case 4 on a mistake, case 6 after three in a row."""

    name = "password"
    amr = "pwd"
    raises_trust = True
    template = "login/step0_password.html"

    def handle(self, flow: LoginFlow):
        form = PasswordForm()
        if request.method == "GET":
            form.nir.data = flow.login_hint or ""
            return render_template(self.template, form=form)
        if not form.validate_on_submit():
            return render_template(self.template, form=form), 400
        key = policy.nir_key(form.nir.data)
        # The attempt is taken before the password is checked: however many requests race,
        # no more than MAX_PASSWORD_FAILURES passwords are ever verified per lock period.
        attempt = limits.reserve(policy.password_failures(), key)
        if not attempt.allowed:  # locked: not verified, not counted, not extended
            return lock_page("login/case6_password_lock.html", attempt.locked_until)
        user = db.session.scalar(_USER_BY_NIR, {"nir": nir.normalize(form.nir.data)})
        # Always one Argon2 verification, known NIR or not: same answer, same time.
        if not crypto.verify_password(user.password_hash if user else None, form.password.data):
            if attempt.locked_until is not None:  # that was the last attempt: case 6
                return lock_page("login/case6_password_lock.html", attempt.locked_until)
            return render_template(self.template, form=form, error=msg("case4_wrong_credentials")), 401
        limits.release(policy.password_failures(), key)
        if crypto.needs_rehash(user.password_hash):
            user.password_hash = crypto.hash_password(form.password.data)
        flow.user_id = user.id
        flow.user = user  # the steps that follow read the person without a query
        return PASSED


class CodeLockCheck(Step):
    """Case 5: after three wrong codes the account waits a few minutes."""

    name = "code-lock"
    silent = True

    def handle(self, flow: LoginFlow):
        locked = limits.locked_until(policy.code_failures(), policy.user_key(flow.user_id))
        if locked is not None:
            return lock_page("login/case5_code_lock.html", locked)
        return PASSED


class AffiliationCheck(Step):
    """Cases 7 and 8: not affiliated (login impossible), affiliation in progress (later)."""

    name = "affiliation"
    silent = True

    def handle(self, flow: LoginFlow):
        status = flow.user.affiliation
        if status == "none":
            return render_template("login/case7_not_affiliated.html"), 403
        if status == "pending":
            return render_template("login/case8_affiliation_pending.html"), 403
        return PASSED


class EmailCheck(Step):
    """Case 1: no validated email, so no code can be sent."""

    name = "email"
    silent = True

    def handle(self, flow: LoginFlow):
        user = flow.user
        if user.email and user.email_verified:
            return PASSED
        from .email_validation import case1_page

        return case1_page(flow)
