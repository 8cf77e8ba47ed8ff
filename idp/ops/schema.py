"""The schema revision the code expects (the Alembic head), and the one the database is at.

The head is read from the migration scripts' ``revision`` / ``down_revision`` lines,
once per process, without importing alembic: the served app does not load it (10 MiB
per worker, see ``wsgi.py``). ``tests/test_ops_health.py`` checks that this reading
agrees with alembic's own.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from sqlalchemy import text

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"

_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.+)$", re.M)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")

#: The table where Alembic writes the revision a database is at.
CURRENT = text("SELECT version_num FROM alembic_version")


@lru_cache(maxsize=1)
def heads() -> frozenset[str]:
    """The revisions no other migration follows (one, unless the scripts branch)."""
    revisions, parents = set(), set()
    for script in VERSIONS.glob("*.py"):
        source = script.read_text()
        found = _REVISION.search(source)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN_REVISION.search(source)
        if down is not None:
            parents.update(_QUOTED.findall(down.group(1)))
    return frozenset(revisions - parents)


def at_head(current: set[str]) -> bool:
    return bool(current) and set(current) == heads()
