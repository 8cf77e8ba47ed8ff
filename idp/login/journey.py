"""The login journey as data: which steps, in which order.

The seed's happy path is the password (step 0), then the security code by email
(steps 1 to 3); a person with an authenticator app chooses at step 1 between the
mail code and the app (or, from the app's page, a recovery code; issue 12).
Between them, the checks that may stop a login (cases 5, 7, 8 and 1) and the
trusted-device shortcut. A step that does not apply to a flow is
skipped, so changing the journey is changing this list.
"""

from __future__ import annotations

from ..mfa.app_steps import AppCodeStep, FactorChoiceStep, RecoveryCodeStep, RecoveryNoticeStep
from ..mfa.steps import CodeEntryStep, CodeRequestStep, TrustedDeviceStep
from ..models import LoginFlow
from ..oidc.acr import ACR_DEVICE, ACR_MFA, ACR_PASSWORD
from .steps import AffiliationCheck, CodeLockCheck, EmailCheck, PasswordStep, Step

JOURNEY: list[Step] = [
    PasswordStep(),       # step 0 — cases 4 and 6
    CodeLockCheck(),      # case 5
    AffiliationCheck(),   # cases 7 and 8
    EmailCheck(),         # case 1
    TrustedDeviceStep(),  # « J'utilise mon ordinateur personnel », within 6 months
    FactorChoiceStep(),   # step 1 with an authenticator app: mail code or app (issue 12)
    CodeRequestStep(),    # steps 1 and 2 — case 3
    CodeEntryStep(),      # step 3 — cases 2, 4 and 5
    AppCodeStep(),        # step 3 by the app — cases 4 and 5 (issue 12)
    RecoveryCodeStep(),   # step 3 by a recovery code — cases 4 and 5 (issue 12)
    RecoveryNoticeStep(), # a recovery code was used: how many are left, enrol again
]


#: The counter a person reads on the pages that ask for input, « Étape 1 sur 3 » to « Étape 3 sur 3 »:
#: the seed's step 0 (password), step 1 (code request) and step 3 (code entry); its step 2 happens in the
#: mailbox. A step without a number (a check, a case page) shows no counter.
PAGE_NUMBERS: dict[str, int] = {
    "password": 1,       # seed step 0
    "code-request": 2,   # seed step 1
    "factor-choice": 2,  # seed step 1, for a person with an authenticator app (issue 12)
    "code": 3,           # seed step 3
    "app-code": 3,       # seed step 3 by the app (issue 12)
    "recovery-code": 3,  # seed step 3 by a recovery code (issue 12)
}
PAGE_TOTAL = max(PAGE_NUMBERS.values())


def next_step(flow: LoginFlow) -> Step | None:
    for step in JOURNEY:
        if step.name not in flow.passed and step.applies(flow):
            return step
    return None


def method(flow: LoginFlow) -> str | None:
    """How the second factor was given (``mail-code``, ``app-code``, ``recovery-code``, ``trusted-browser``)."""
    given = [s.method for s in JOURNEY if s.name in flow.passed and s.method]
    return given[-1] if given else None


def methods(flow: LoginFlow) -> tuple[list[str], str]:
    """``amr`` (RFC 8176) and ``acr`` earned by the steps passed."""
    amr = [s.amr for s in JOURNEY if s.name in flow.passed and s.amr]
    if "otp" in amr:
        return [*amr, "mfa"], ACR_MFA
    if "device" in flow.passed:
        return amr, ACR_DEVICE
    return amr, ACR_PASSWORD
