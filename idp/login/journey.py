"""The login journey as data: which steps, in which order.

The seed's happy path is password (step 0), then the security code by email
(steps 1-3). Steps that do not apply to a given flow are skipped, so adding a
step is adding a line here.
"""

from __future__ import annotations

from ..models import LoginFlow
from ..oidc.acr import ACR_MFA, ACR_PASSWORD
from .steps import PasswordStep, Step

JOURNEY: list[Step] = [
    PasswordStep(),
]


def next_step(flow: LoginFlow) -> Step | None:
    for step in JOURNEY:
        if step.name not in flow.passed and step.applies(flow):
            return step
    return None


def methods(flow: LoginFlow) -> tuple[list[str], str]:
    """``amr`` and ``acr`` earned by the steps passed."""
    amr = [s.amr for s in JOURNEY if s.name in flow.passed and s.amr]
    if len(amr) > 1:
        amr.append("mfa")
    return amr, ACR_MFA if "mfa" in amr else ACR_PASSWORD
