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
from ..login import notice
from ..login.steps import PASSED, Step, field_errors, form_error_key
from ..mail import MailError
from ..messages import msg
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


CASE3 = "login/case3_code_quota.html"
CASE5 = "login/case5_code_lock.html"
MAIL_FAILED = "login/mail_failed.html"


class _CodeStep(Step):
    def applies(self, flow: LoginFlow) -> bool:
        # A person with an app who chose it (or a recovery code) at step 1 gets no mail code.
        return "device" not in flow.passed and flow.second_factor in (None, "mail")

    def _send(self, flow: LoginFlow, retry: str):
        """Send a code; when that is impossible (case 5 lock, case 3, mail failure) the notice that says so.

        ``retry``: the action of the mail-failure page's « Réessayer » button (the same request again).
        """
        locked = limits.locked_until(policy.code_failures(), policy.user_key(flow.user_id))
        if locked is not None:  # locked by wrong codes (maybe in another login): no new code meanwhile
            codes.record_failure(flow, 5, "code-request", refused=True)
            return notice.keep(flow, self.name, 429, page=CASE5, until=locked)
        try:
            blocked = codes.issue(flow)
        except MailError:
            current_app.logger.warning("Security code mail could not be sent (flow %s)", flow.id)
            return notice.keep(flow, self.name, 503, page=MAIL_FAILED, retry=retry)
        if blocked is not None:
            return notice.keep(flow, self.name, 429, page=CASE3, until=blocked)
        return None

    def _kept_page(self, flow: LoginFlow):
        """On a GET, the case page a form of this step led to (cases 3 and 5, the mail failure), if any."""
        kept = notice.current(flow, self.name)
        if kept and kept["page"]:
            # Case 3 while a code is pending: « Saisir le code reçu » leads back to step 3.
            return notice.show_page(kept, code_pending=self.name == "code" and codes.pending(flow))
        return None


class CodeRequestStep(_CodeStep):
    """Step 1: the person is told a code will be sent to their personal mailbox."""

    name = "code-request"
    template = "login/step1_code_request.html"

    def handle(self, flow: LoginFlow):
        form = CodeRequestForm()
        if request.method == "GET":
            kept = notice.current(flow, self.name)
            shown = self._kept_page(flow)
            if shown is not None:
                return shown
            return render_template(self.template, form=form, masked_email=codes.mask_email(flow.user.email),
                                   code_minutes=codes.lifetime_minutes(),
                                   error=msg(kept["error"]) if kept and kept["error"] else None), \
                kept["status"] if kept else 200
        if not form.validate_on_submit():
            return notice.keep(flow, self.name, 400, error=form_error_key(form))
        return self._send(flow, retry="request") or PASSED


class CodeEntryStep(_CodeStep):
    """Step 3: the 6-digit code; cases 2 (expired), 4 (wrong) and 5 (three wrong)."""

    name = "code"
    amr = "otp"
    method = "mail-code"
    raises_trust = True
    template = "login/step3_code_entry.html"

    def handle(self, flow: LoginFlow):
        form = CodeForm()
        if request.method == "GET":
            shown = self._kept_page(flow)
            if shown is not None:
                return shown
            kept = notice.current(flow, self.name)
            notice.apply_to_form(form, kept)
            return render_template(self.template, form=form, masked_email=codes.mask_email(flow.user.email),
                                   code_minutes=codes.lifetime_minutes(), expires_at=flow.code_expires_at,
                                   error=kept["error"] if kept else None,
                                   csrf_message=msg("csrf") if kept and kept["error"] == "csrf" else None,
                                   resent=bool(kept and kept["flags"].get("resent"))), \
                kept["status"] if kept else 200
        if request.form.get("action") == "resend":  # « Recevoir un nouveau code de sécurité »
            if not FlaskForm().validate_on_submit():
                return notice.keep(flow, self.name, 400, error="csrf")
            return self._send(flow, retry="resend") or notice.keep(flow, self.name, 200, resent=True)
        if "code" not in request.form:
            # Step 1's button again (the back button), or « Saisir le code reçu »: show step 3.
            return notice.see_current_step()
        if not form.validate_on_submit():
            return notice.keep(flow, self.name, 400, error=form_error_key(form), errors=field_errors(form))
        verdict = codes.verify(flow, form.code.data.strip())
        result = verdict.result
        if result is codes.Result.OK:
            if form.remember.data:
                flow.remember_device = True
            return PASSED
        if result is codes.Result.LOCKED:
            return notice.keep(flow, self.name, 429, page=CASE5, until=verdict.locked_until)
        if result is not codes.Result.WRONG:  # cases 2 and no code: that code is of no use any more
            return notice.keep(flow, self.name, 400, error=result.value)
        return notice.keep(flow, self.name, 401, error=result.value)
