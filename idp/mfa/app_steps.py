"""The login steps of the second factor without the mailbox (issue 12).

For a person with an authenticator app enrolled (and only them: for everyone else
none of these steps applies, and the journey is the seed's), after the trusted-browser
shortcut:

* :class:`FactorChoiceStep` — step 1: « Recevoir un code par mail » or « Utiliser mon
  application d'authentification »; the choice is kept in the flow (``second_factor``);
  the mail choice goes on to the seed's steps 1 to 3 (:class:`~.steps.CodeRequestStep`);
* :class:`AppCodeStep` — step 3 by the app: the 6-digit code of the app, « J'utilise mon
  ordinateur personnel »; from it, « Utiliser un code de secours » or the mail code;
* :class:`RecoveryCodeStep` — step 3 by a recovery code;
* :class:`RecoveryNoticeStep` — after a recovery code: the page that says it was used,
  how many are left, and suggests enrolling the app again and renewing the codes.

Wrong app codes and wrong recovery codes count toward case 5's lock exactly like wrong
mail codes: the same counter (:func:`idp.login.policy.code_failures`), an attempt
reserved by one atomic statement (:func:`idp.limits.reserve`) before the code is
compared, released by a right one.
"""

from __future__ import annotations

from typing import Callable

from flask import redirect, render_template, request, url_for
from flask_wtf import FlaskForm

from .. import audit, limits
from ..login import notice, policy
from ..login.steps import PASSED, Step, field_errors, flow_client, form_error_key
from ..messages import msg
from ..models import LoginFlow
from . import codes, notices, recovery_codes, totp
from .forms import AppCodeForm, RecoveryCodeForm

CASE5_PAGE = "login/case5_code_lock.html"
#: What a person may choose at step 1, and what each choice leads to.
FACTORS = ("mail", "app")


def _second_factor_due(flow: LoginFlow) -> bool:
    """Neither a trusted browser nor a fresh code is left out: a second factor is still to give."""
    return "device" not in flow.passed


def _mail_possible(flow: LoginFlow) -> bool:
    """A mail code can be sent (case 1 otherwise: the app was chosen on the case 1 page)."""
    return bool(flow.user.email and flow.user.email_verified)


def _switch(flow: LoginFlow, factor: str):
    """Go to another way of giving the second factor (the form's CSRF checked); 303 to the journey's URL."""
    if not FlaskForm().validate_on_submit():
        return None
    flow.second_factor = factor
    return redirect(url_for("login.step"), code=303)


def _guarded(flow: LoginFlow, step: str, check: Callable[[], bool]):
    """Compare a code once an attempt of case 5's counter is reserved; None when right, else the outcome.

    The outcome is the 303 to the case 5 page (locked, or this attempt locked it) or
    ``"wrong"`` (case 4). As :func:`idp.mfa.codes.verify` does for the mail code.
    """
    key = policy.user_key(flow.user_id)
    attempt = limits.reserve(policy.code_failures(), key, commit=False)
    if not attempt.allowed:  # recorded in the transaction of the counter's statement
        codes.record_failure(flow, 5, step, refused=True)
        limits.commit_keeping_loaded()
        return notice.keep(flow, step, 429, page=CASE5_PAGE, until=attempt.locked_until)  # not compared, not counted
    limits.commit_keeping_loaded()  # the reservation holds for the other workers while this one compares
    if check():
        limits.release(policy.code_failures(), key)
        return None
    if attempt.locked_until:  # the last attempt: case 5
        codes.record_failure(flow, 5, step)
        audit.record("lock_set", user_id=flow.user_id, nir=flow.user.nir, client_id=flow_client(flow), case=5,
                     detail={"kind": "code", "until": attempt.locked_until.isoformat() + "Z"})
        return notice.keep(flow, step, 429, page=CASE5_PAGE, until=attempt.locked_until)
    codes.record_failure(flow, 4, step)
    return "wrong"


def _kept(flow: LoginFlow, step: str, form):
    """On a GET: the case page a form of ``step`` led to (case 5), or the context of the step's own page
    with the answer kept for it (Post/Redirect/Get, :mod:`idp.login.notice`) and the status it answers."""
    kept = notice.current(flow, step)
    if kept and kept["page"]:
        return notice.show_page(kept), None, None
    notice.apply_to_form(form, kept)
    error = kept["error"] if kept else None
    context = {"error": error, "csrf_message": msg("csrf") if error == "csrf" else None}
    return None, context, (kept["status"] if kept else 200)


def _refused_form(flow: LoginFlow, step: str, form):
    return notice.keep(flow, step, 400, error=form_error_key(form), errors=field_errors(form))


class FactorChoiceStep(Step):
    """Step 1 for a person with an app: which second factor."""

    name = "factor-choice"
    template = "login/step1_factor_choice.html"

    def applies(self, flow: LoginFlow) -> bool:
        # Not when the app was already chosen on the case 1 page (no validated e-mail).
        return _second_factor_due(flow) and flow.user.has_app and flow.second_factor is None

    def handle(self, flow: LoginFlow):
        form = FlaskForm()
        page = lambda **context: render_template(self.template, form=form,  # noqa: E731
                                                 masked_email=codes.mask_email(flow.user.email), **context)
        if request.method == "GET":
            kept = notice.current(flow, self.name)
            error = kept["error"] if kept else None
            return page(error=error, csrf_message=msg("csrf") if error == "csrf" else None), \
                kept["status"] if kept else 200
        factor = request.form.get("factor")
        if not form.validate_on_submit():
            return notice.keep(flow, self.name, 400, error=form_error_key(form) or "choice")
        if factor not in FACTORS:
            return notice.keep(flow, self.name, 400, error="choice")
        flow.second_factor = factor
        return PASSED


class AppCodeStep(Step):
    """Step 3 by the authenticator app: cases 4 (wrong code) and 5 (locked), as for the mail code."""

    name = "app-code"
    amr = "otp"
    method = "app-code"
    raises_trust = True
    template = "login/step3_app_code.html"

    def applies(self, flow: LoginFlow) -> bool:
        return _second_factor_due(flow) and flow.second_factor == "app"

    def handle(self, flow: LoginFlow):
        form = AppCodeForm()
        page = lambda **context: render_template(self.template, form=form,  # noqa: E731
                                                 mail_possible=_mail_possible(flow), **context)
        if request.method == "GET":
            shown, context, status = _kept(flow, self.name, form)
            return shown or (page(**context), status)
        action = request.form.get("action")
        if action == "recovery" or (action == "mail" and _mail_possible(flow)):
            # « Utiliser un code de secours », « Recevoir plutôt un code par mail »
            return _switch(flow, action) or notice.keep(flow, self.name, 400, error="csrf")
        if not form.validate_on_submit():
            return _refused_form(flow, self.name, form)
        outcome = _guarded(flow, self.name, lambda: totp.verify(flow.user, form.code.data))
        if outcome is None:
            if form.remember.data:
                flow.remember_device = True
            return PASSED
        if outcome == "wrong":
            return notice.keep(flow, self.name, 401, error="wrong")
        return outcome


class RecoveryCodeStep(Step):
    """Step 3 by a recovery code: single use; the person is told by mail."""

    name = "recovery-code"
    amr = "otp"
    method = "recovery-code"
    raises_trust = True
    template = "login/step3_recovery_code.html"

    def applies(self, flow: LoginFlow) -> bool:
        return _second_factor_due(flow) and flow.second_factor == "recovery"

    def handle(self, flow: LoginFlow):
        form = RecoveryCodeForm()
        page = lambda **context: render_template(self.template, form=form, **context)  # noqa: E731
        if request.method == "GET":
            shown, context, status = _kept(flow, self.name, form)
            return shown or (page(**context), status)
        if request.form.get("action") == "app":  # « Revenir au code de l'application »
            return _switch(flow, "app") or notice.keep(flow, self.name, 400, error="csrf")
        if not form.validate_on_submit():
            return _refused_form(flow, self.name, form)
        outcome = _guarded(flow, self.name, lambda: recovery_codes.consume(flow.user, form.code.data))
        if outcome == "wrong":
            return notice.keep(flow, self.name, 401, error="wrong")
        if outcome is not None:
            return outcome
        user = flow.user
        left = recovery_codes.remaining(user)
        audit.record("recovery_code_used", user_id=user.id, nir=user.nir, client_id=flow_client(flow),
                     detail={"remaining": left})
        # The code is used for good, whatever happens next; no transaction stays open during the mail.
        limits.commit_keeping_loaded()
        notices.recovery_code_used(user, left)
        return PASSED


class RecoveryNoticeStep(Step):
    """After a recovery code: « il vous reste N codes », enrol the app again, renew the codes."""

    name = "recovery-notice"
    template = "login/recovery_code_used.html"

    def applies(self, flow: LoginFlow) -> bool:
        return "recovery-code" in flow.passed

    def handle(self, flow: LoginFlow):
        form = FlaskForm()
        if request.method == "GET":
            kept = notice.current(flow, self.name)
            error = kept["error"] if kept else None
            return render_template(self.template, form=form, remaining=recovery_codes.remaining(flow.user),
                                   csrf_message=msg("csrf") if error == "csrf" else None), \
                kept["status"] if kept else 200
        if not form.validate_on_submit():
            return notice.keep(flow, self.name, 400, error="csrf")
        return PASSED
