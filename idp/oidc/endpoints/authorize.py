"""Authorization endpoint: validate, then answer at once or start the login journey.

1. Authlib validates the client and the exact redirect URI (an error there is a
   French page: the browser is never sent to an unverified address), then the
   named checks of :mod:`idp.oidc.checks` (PKCE, nonce, prompt, max_age, ...).
2. A live login session that satisfies ``max_age`` and ``acr_values`` answers
   at once (single sign-on; ``prompt=none`` needs one, else ``login_required``).
3. Otherwise the request is kept in a login flow and the person logs in
   (``prompt=login`` always goes there).
"""

from __future__ import annotations

import time

from authlib.oauth2 import OAuth2Error
from flask import render_template, request

from ... import sessions
from ...login import flow as login_flow
from ..acr import ACR_MFA
from ..checks import parse_max_age
from ..server import server
from . import bp


def session_satisfies(session, params) -> bool:
    max_age = parse_max_age(params.get("max_age"))
    if max_age is not None and time.time() - session.auth_time > max_age:
        return False
    acr_values = (params.get("acr_values") or "").split()
    if ACR_MFA in acr_values and acr_values[0] == ACR_MFA and session.acr != ACR_MFA:
        return False
    return True


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    current = sessions.current()
    end_user = current if current is not None and session_satisfies(current, request.values) else None
    try:
        grant = server.get_consent_grant(end_user=end_user)
    except OAuth2Error as error:
        return error_response(error)
    if end_user is not None and grant.prompt != "login":
        sessions.touch(end_user)
        return server.create_authorization_response(grant_user=end_user, grant=grant)
    return login_flow.start(grant.request)


def error_response(error: OAuth2Error):
    if error.redirect_uri:
        return server.authorization_error_response(server.create_oauth2_request(None), error)
    # No verified redirect URI: tell the person, never redirect (RFC 6749 §4.1.2.1).
    return render_template("errors/authorization.html", error=error), 400
