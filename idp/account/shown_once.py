"""New recovery codes, kept for the one page that shows them, then gone.

The codes are stored hashed (:mod:`idp.mfa.recovery_codes`): once generated, nothing
on the server can show them again. Between the POST that generates them and the GET
that shows them (Post/Redirect/Get), they wait in Flask's session cookie, *sealed*
(:func:`idp.crypto.seal`: AES-GCM under a key derived from the server secret; the
cookie itself is only signed) and bound to the person and to the provider's login
session that generated them. The GET *takes* them: the cookie it sends back no
longer holds them, so a reload, the back button or a later visit shows no code.
Another person's login in the same browser (another session row) finds nothing to
show, and the codes never enter a URL or a log.
"""

from __future__ import annotations

import json

from flask import session

from .. import crypto
from ..models import BrowserSession

KEY = "idp_account_new_codes"
PURPOSE = "account-recovery-codes-shown-once"


def keep(row: BrowserSession, codes: list[str], reason: str) -> None:
    """``reason``: ``enrolled`` (a new app) or ``regenerated`` (« Générer de nouveaux codes »)."""
    session[KEY] = crypto.seal(PURPOSE, json.dumps({"user": row.user_id, "session": row.id, "codes": codes,
                                                    "reason": reason}))


def take(row: BrowserSession) -> dict | None:
    """``{"codes": [...], "reason": ...}`` kept for this person and this login session, once; None otherwise."""
    sealed = session.pop(KEY, None)
    if not isinstance(sealed, str):
        return None
    opened = crypto.unseal(PURPOSE, sealed)
    if opened is None:
        return None
    try:
        kept = json.loads(opened)
    except ValueError:
        return None
    if kept.get("user") != row.user_id or kept.get("session") != row.id:
        return None
    codes = kept.get("codes")
    if not isinstance(codes, list):
        return None
    return {"codes": [str(c) for c in codes], "reason": str(kept.get("reason"))}
