"""axe-core, the accessibility engine, run in a page (npm package ``axe-core``, pinned in spa/package-lock.json).

Its source is evaluated through Playwright (DevTools), which the provider's
Content-Security-Policy does not govern: the pages' own CSP stays as served.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

NPM_DIR = Path(__file__).parent / "spa"
SOURCE = NPM_DIR / "node_modules" / "axe-core" / "axe.min.js"

#: WCAG 2.1 A and AA rules, and axe's best practices (landmarks, one h1…).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@cache
def source() -> str:
    """axe.min.js; installed from npm (package-lock.json) when missing."""
    if not SOURCE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed for the accessibility checks (apt-get install npm; make test installs them)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=NPM_DIR, check=True, timeout=300)
    return SOURCE.read_text()


def violations(page) -> list[str]:
    """axe's violations on the page as it is now: « rule: target… » lines, empty when clean."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(source())
    found = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
                          ".then(r => r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))",
                          TAGS)
    return found
