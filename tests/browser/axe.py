"""axe-core (npm, pinned by tests/browser/axe/package-lock.json) run in a page: the WCAG/RGAA violations it finds.

The provider's CSP forbids injected scripts; the tests that call :func:`violations` open
their context with ``bypass_csp=True`` (the relaxation lives in the test only).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

AXE_DIR = Path(__file__).parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def axe_source() -> str:
    """The axe-core bundle, installed from npm (package-lock.json) when missing."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed for the accessibility tests (apt-get install npm; make test installs axe-core)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=AXE_DIR, check=True, timeout=300)
    return AXE_JS.read_text()


def violations(page) -> list[str]:
    """axe-core's violations on the page as it is now, one line each (rule, impact, first targets)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source())
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS)
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes'][:3]]}" for v in result["violations"]]
