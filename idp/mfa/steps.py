"""Steps 1 to 3 of the seed, and the trusted-device shortcut.

* :class:`TrustedDeviceStep` — a browser trusted within six months skips the
  code, unless the relying party asks for a fresh one (``acr_values``, or an
  essential ``acr`` in the ``claims`` parameter that ``urn:idp:acr:device`` does not meet);
* :class:`CodeRequestStep` — step 1: « un code de sécurité va être envoyé »;
* :class:`CodeEntryStep` — step 3: the code, « J'utilise mon ordinateur personnel ».
"""

from __future__ import annotations

from flask import current_app, render_template, request
from flask_wtf import FlaskForm

from .. import limits
from ..login import policy
from ..login.forms import CodeForm, CodeRequestForm
from ..login.steps import PASSED, Step, lock_page
from ..mail import MailError
from ..models import LoginFlow
from ..oidc.acr import AcrRequest
from . import codes, devices


def fresh_code_required(flow: LoginFlow) -> bool:
    """The relying party asked for the code even on a trusted device (:meth:`AcrRequest.requires_code`)."""
    return AcrRequest.from_params(flow.authorization_params).requires_code()


class TrustedDeviceStep(Step):
    name = "device"
    method = "trusted-browser"
    silent = True

    def applies(self, flow: LoginFlow) -> bool:
        # The security space's fresh login before a change wants the second factor itself.
        return (not flow.second_factor_required and not fresh_code_required(flow)
                and devices.recognised(flow.user_id) is not None)

    def handle(self, flow: LoginFlow):
        return PASSED


class _CodeStep(Step):
    def applies(self, flow: LoginFlow) -> bool:
        # A person with an app who chose it (or a recovery code) at step 1 gets no mail code.
        return "device" not in flow.passed and flow.second_factor in (None, "mail")

    @staticmethod
    def _send(flow: LoginFlow):
        """Send a code; a response when that is impossible (case 5 lock, case 3, mail failure)."""
        locked = limits.locked_until(policy.code_failures(), policy.user_key(flow.user_id))
        if locked is not None:  # locked by wrong codes (maybe in another login): no new code meanwhile
            codes.record_failure(flow, 5, "code-request", refused=True)
            return lock_page("login/case5_code_lock.html", locked)
        try:
            blocked = codes.issue(flow)
        except MailError:
            current_app.logger.warning("Security code mail could not be sent (flow %s)", flow.id)
            return render_template("login/mail_failed.html"), 503, MailError.headers()
        if blocked is not None:
            return lock_page("login/case3_code_quota.html", blocked)
        return None


class CodeRequestStep(_CodeStep):
    """Step 1: the person is told a code will be sent to their personal mailbox."""

    name = "code-request"
    template = "login/step1_code_request.html"

    def handle(self, flow: LoginFlow):
        form = CodeRequestForm()
        masked = codes.mask_email(flow.user.email)
        if request.method == "GET" or not form.validate_on_submit():
            return render_template(self.template, form=form, masked_email=masked,
                                   code_minutes=codes.lifetime_minutes())
        return self._send(flow) or PASSED


class CodeEntryStep(_CodeStep):
    """Step 3: the 6-digit code; cases 2 (expired), 4 (wrong) and 5 (three wrong)."""

    name = "code"
    amr = "otp"
    method = "mail-code"
    raises_trust = True
    template = "login/step3_code_entry.html"

    def handle(self, flow: LoginFlow):
        form = CodeForm()

        def page(**context):
            return render_template(self.template, form=form, masked_email=codes.mask_email(flow.user.email),
                                   code_minutes=codes.lifetime_minutes(), **context)

        if request.method == "GET":
            return page()
        if request.form.get("action") == "resend":  # « Recevoir un nouveau code de sécurité »
            if not FlaskForm().validate_on_submit():
                return page(), 400
            form = CodeForm(formdata=None)
            return self._send(flow) or page(resent=True)
        if "code" not in request.form:
            # Step 1's button again (the back button): the code was sent, show step 3.
            return page()
        if not form.validate_on_submit():
            return page(), 400
        verdict = codes.verify(flow, form.code.data.strip())
        result = verdict.result
        if result is codes.Result.OK:
            if form.remember.data:
                flow.remember_device = True
            return PASSED
        if result is codes.Result.LOCKED:
            return lock_page("login/case5_code_lock.html", verdict.locked_until)
        if result is not codes.Result.WRONG:  # cases 2 and no code: that code is of no use any more
            form = CodeForm(formdata=None)
            return page(error=result.value), 400
        return page(error=result.value), 401
