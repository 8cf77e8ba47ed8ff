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

from flask import g, render_template, request
from sqlalchemy import bindparam, select

from .. import audit, crypto, limits, nir
from ..extensions import db
from ..messages import msg
from ..models import LoginFlow, User, utcnow
from . import notice, policy
from .forms import PasswordForm

PASSED = object()

_USER_BY_NIR = select(User).where(User.nir == bindparam("nir"))


def flow_client(flow: LoginFlow) -> str | None:
    """The public identifier of the relying party a login serves (for the audit trail)."""
    return (flow.authorization_params or {}).get("client_id")


def refuse(flow: LoginFlow, step: "Step", case: int, **detail) -> None:
    """Record a login refused by ``step`` for the seed's ``case``, the person known.

    A silent check is evaluated again by each request on the page it shows (a reload,
    the case 1 page's own form): only the request that reached it, the one in which
    the step before passed, is recorded.
    """
    if step.silent and not g.get("idp_login_advanced"):
        return
    user = flow.user
    audit.record("login_failed", user_id=flow.user_id, nir=user.nir if user is not None else None,
                 client_id=flow_client(flow), case=case, detail={"step": step.name, **detail})


CASE6 = "login/case6_password_lock.html"


def field_errors(form) -> dict[str, list[str]]:
    """The errors of a refused form's fields, to show again after the redirect (CSRF apart)."""
    return {name: list(errors) for name, errors in form.errors.items() if name != "csrf_token"}


def form_error_key(form) -> str | None:
    """``csrf`` when the form was refused for its CSRF token alone (an expired page)."""
    return "csrf" if "csrf_token" in form.errors else None


def lock_page(template: str, until):
    """A page saying until when something is locked (cases 3, 5, 6): 429 with ``Retry-After``."""
    seconds = max(1, int((until - utcnow()).total_seconds()))
    return render_template(template, until=until), 429, {"Retry-After": str(seconds)}


class Step(ABC):
    name: str = ""
    #: Authentication method reference (RFC 8176) this step contributes, if any.
    amr: str | None = None
    #: How the second factor was given, when this step gives it: the audit trail's ``method``.
    method: str | None = None
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
            kept = notice.current(flow, self.name)
            if kept and kept["page"]:  # case 6
                return notice.show_page(kept)
            form.nir.data = flow.login_hint or ""
            notice.apply_to_form(form, kept)
            key = kept["error"] if kept else None
            # Case 4 is tied to the password field; an expired form (CSRF) is said for the whole form.
            return render_template(self.template, form=form,
                                   error=msg(key) if key and key != "csrf" else None,
                                   csrf_message=msg(key) if key == "csrf" else None), kept["status"] if kept else 200
        if not form.validate_on_submit():
            return notice.keep(flow, self.name, 400, error=form_error_key(form), errors=field_errors(form),
                               values={"nir": (form.nir.data or "")[:32]})
        key = policy.nir_key(form.nir.data)
        # The attempt is taken before the password is checked: however many requests race,
        # no more than MAX_PASSWORD_FAILURES passwords are ever verified per lock period.
        attempt = limits.reserve(policy.password_failures(), key, commit=False)
        if not attempt.allowed:  # locked: not verified, not counted, not extended
            # Its audit row goes in the transaction of the counter's statement.
            audit.record("login_failed", nir=form.nir.data, client_id=flow_client(flow), case=6,
                         detail={"step": self.name, "refused": True})
            limits.commit_keeping_loaded()
            return notice.keep(flow, self.name, 429, page=CASE6, until=attempt.locked_until)
        limits.commit_keeping_loaded()  # the reservation holds for the other workers while this one verifies
        user = db.session.scalar(_USER_BY_NIR, {"nir": nir.normalize(form.nir.data)})
        # Always one Argon2 verification, known NIR or not: same answer, same time.
        if not crypto.verify_password(user.password_hash if user else None, form.password.data):
            # Committed by the request (a POST always commits), right after the reservation's.
            user_id = user.id if user else None
            if attempt.locked_until is not None:  # that was the last attempt: case 6
                audit.record("login_failed", user_id=user_id, nir=form.nir.data, client_id=flow_client(flow),
                             case=6, detail={"step": self.name})
                audit.record("lock_set", user_id=user_id, nir=form.nir.data, client_id=flow_client(flow), case=6,
                             detail={"kind": "password", "until": attempt.locked_until.isoformat() + "Z"})
                return notice.keep(flow, self.name, 429, page=CASE6, until=attempt.locked_until)
            audit.record("login_failed", user_id=user_id, nir=form.nir.data, client_id=flow_client(flow),
                         case=4, detail={"step": self.name})
            return notice.keep(flow, self.name, 401, error="case4_wrong_credentials", values={"nir": form.nir.data})
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
            refuse(flow, self, 5, refused=True)
            return lock_page("login/case5_code_lock.html", locked)
        return PASSED


class AffiliationCheck(Step):
    """Cases 7 and 8: not affiliated (login impossible), affiliation in progress (later)."""

    name = "affiliation"
    silent = True

    def handle(self, flow: LoginFlow):
        status = flow.user.affiliation
        if status == "none":
            refuse(flow, self, 7)
            return render_template("login/case7_not_affiliated.html"), 403
        if status == "pending":
            refuse(flow, self, 8)
            return render_template("login/case8_affiliation_pending.html"), 403
        return PASSED


class EmailCheck(Step):
    """Case 1: no validated email, so no code can be sent."""

    name = "email"
    silent = True

    def handle(self, flow: LoginFlow):
        user = flow.user
        # A person with an authenticator app who chose it on this page needs no mail (issue 12).
        if (user.email and user.email_verified) or (flow.second_factor == "app" and user.has_app):
            return PASSED
        refuse(flow, self, 1)
        from .email_validation import case1_page

        return case1_page(flow, self.name)
