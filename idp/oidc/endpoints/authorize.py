"""Authorization endpoint: validate, then answer at once or start the login journey.

1. Authlib validates the client and the exact redirect URI (an error there is a
   French page: the browser is never sent to an unverified address), then the
   named checks of :mod:`idp.oidc.checks` (PKCE, nonce, prompt, max_age, ...).
2. A live login session that satisfies ``max_age``, ``acr_values`` and
   ``id_token_hint`` (the person it names) answers at once (single sign-on;
   ``prompt=none`` needs one, else ``login_required``).
3. Otherwise the request is kept in a login flow and the person logs in
   (``prompt=login`` always goes there).

When the database fails on the way (:func:`idp.errors.is_database_outage`), the
relying party gets ``temporarily_unavailable`` at its redirect URI if the client
had been loaded and that URI verified; before that, nothing is known about the
address, and the person gets the French « Service momentanément indisponible »
page (503) of :mod:`idp.errors`.
"""

from __future__ import annotations

import time

from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from flask import current_app, render_template, request
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy.exc import SQLAlchemyError

from ... import errors, sessions
from ...login import flow as login_flow
from .. import keys
from ..acr import AcrRequest
from ..checks import parse_max_age
from ..claims import pairwise_sub
from ..server import find_client, server
from . import bp


def session_satisfies(session, params) -> bool:
    max_age = parse_max_age(params.get("max_age"))
    if max_age is not None and time.time() - session.auth_time > max_age:
        return False
    if not AcrRequest.from_params(params).accepts(session.acr):
        return False
    hint = params.get("id_token_hint")
    if hint is not None and not hint_names(hint, session, params.get("client_id")):
        return False
    return True


def hint_names(id_token_hint: str, session, client_id: str | None) -> bool:
    """Whether ``id_token_hint`` is one of our ID tokens, for this client, about the session's person.

    OIDC Core §3.1.2.1: when the hint names someone else, ``prompt=none`` gets
    ``login_required`` and otherwise the person logs in again. An expired hint is fine.
    """
    client = find_client(client_id)
    if client is None or len(id_token_hint) > 8192:
        return False
    try:
        token = jwt.decode(id_token_hint, keys.public_key_set(), algorithms=list(keys.SUPPORTED_ALGS))
    except (JoseError, ValueError):
        return False
    claims = token.claims
    audience = claims.get("aud")
    return (
        claims.get("iss") == current_app.config["IDP_ISSUER"]
        and (audience == client.client_id or (isinstance(audience, list) and client.client_id in audience))
        and claims.get("sub") == pairwise_sub(session.user, client)
    )


class TemporarilyUnavailableError(OAuth2Error):
    """RFC 6749 §4.1.2.1: the server cannot handle the request now (here: its database)."""

    error = "temporarily_unavailable"
    description = "The service is temporarily unavailable. Retry later."


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    # On the request itself, not Flask's proxy: Authlib reads its parameters some thirty times.
    oauth_request = FlaskOAuth2Request(request._get_current_object())
    redirect_uri = None  # once verified against the client, errors may be sent there
    try:
        current = sessions.current()
        end_user = current if current is not None and session_satisfies(current, request.values) else None
        try:
            grant = server.get_consent_grant(request=oauth_request, end_user=end_user)
        except OAuth2Error as error:
            return error_response(error)
        redirect_uri = grant.redirect_uri
        if end_user is not None and grant.prompt != "login":
            sessions.touch(end_user)
            return server.create_authorization_response(grant_user=end_user, grant=grant)
        return login_flow.start(grant.request)
    except SQLAlchemyError as error:
        redirect_uri = redirect_uri or checked_before_failure(oauth_request)
        if redirect_uri is None or not errors.is_database_outage(error):
            raise  # the error handlers answer: the French 503 page, or a 500 for a bug
        errors.recover_from_outage(error)
        return error_response(TemporarilyUnavailableError(redirect_uri=redirect_uri))


def checked_before_failure(oauth_request) -> str | None:
    """The redirect URI, when the database failed during validation but after it was checked.

    Authlib sets ``oauth_request.client`` only once the redirect URI has been checked
    (the later checks read the database: the nonce). A failed read leaves the client
    loaded; the check is made again on it, and if its attributes would have to be
    read again from the failing database, there is no verified address.
    """
    client = oauth_request.client
    redirect_uri = oauth_request.payload.redirect_uri
    if client is None or not redirect_uri:
        return None
    try:
        return redirect_uri if client.check_redirect_uri(redirect_uri) else None
    except SQLAlchemyError:
        return None


def error_response(error: OAuth2Error):
    if error.redirect_uri:
        return server.authorization_error_response(server.create_oauth2_request(None), error)
    # No verified redirect URI: tell the person, never redirect (RFC 6749 §4.1.2.1).
    return render_template("errors/authorization.html", error=error), 400
