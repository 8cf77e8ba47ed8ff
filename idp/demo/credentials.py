"""The demo relying party's credentials: written by ``idp demo``, read by the demo pages.

A small JSON file (``IDP_DEMO_CLIENT_FILE``, default ``instance/demo-client.json``),
mode 0600, replaced atomically. It records the issuer it was made for: when the
provider's address changes, the demo asks for ``idp demo`` again instead of
failing on a redirect URI the provider does not know.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from flask import current_app

from .. import config

CLIENT_NAME = "Site de démonstration"
SCOPE = "openid profile email affiliation"


@dataclass(frozen=True)
class Credentials:
    issuer: str
    client_id: str
    client_secret: str

    @property
    def redirect_uri(self) -> str:
        return redirect_uri(self.issuer)

    @property
    def post_logout_redirect_uri(self) -> str:
        return post_logout_redirect_uri(self.issuer)


def redirect_uri(issuer: str) -> str:
    return f"{issuer}/demo/callback"


def post_logout_redirect_uri(issuer: str) -> str:
    return f"{issuer}/demo/"


def path() -> Path:
    configured = current_app.config.get("IDP_DEMO_CLIENT_FILE")
    return Path(configured) if configured else config.INSTANCE_DIR / "demo-client.json"


def read() -> Credentials | None:
    """The stored credentials, or None when missing or unreadable."""
    try:
        data = json.loads(path().read_text())
        return Credentials(str(data["issuer"]), str(data["client_id"]), str(data["client_secret"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def current() -> Credentials | None:
    """The stored credentials if they were made for this provider's issuer."""
    creds = read()
    if creds is None or creds.issuer != current_app.config["IDP_ISSUER"]:
        return None
    return creds


def write(creds: Credentials) -> Path:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        **asdict(creds),
        "redirect_uri": creds.redirect_uri,
        "post_logout_redirect_uri": creds.post_logout_redirect_uri,
    }
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".demo-client-", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
