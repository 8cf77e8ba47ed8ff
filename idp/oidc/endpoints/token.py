"""Token endpoint: authorization_code (PKCE), refresh_token (rotating), client_credentials."""

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidGrantError, InvalidRequestError
from flask import request
from sqlalchemy.exc import IntegrityError

from .. import store
from ..server import find_client, forget_client, server
from . import bp

#: RFC 6749 §3.2: request parameters MUST NOT be included more than once. Authlib reads
#: the first value of each; a second one is refused rather than silently ignored.
SINGLE_VALUED = (
    "grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope",
    "client_id", "client_secret", "client_assertion", "client_assertion_type",
)


@bp.route("/token", methods=["POST"])
def token():
    for name in SINGLE_VALUED:
        if len(request.values.getlist(name)) > 1:
            return server.handle_error_response(None, InvalidRequestError(f"Multiple '{name}' in request."))
    if request.form.get("grant_type") == "client_credentials":
        store.autocommit()  # it writes one row, the token: nothing to commit with it
    try:
        response = server.create_token_response()
        # One commit per request: the code or refresh token consumed and the tokens stored together,
        # after the answer is made (a failure before leaves nothing half done).
        store.commit()
    except IntegrityError:
        return _owner_gone()
    return response


def _owner_gone():
    """The new token's client, grant or person was deleted while the request ran.

    The client comes from the per-process cache (``IDP_CLIENT_CACHE_SECONDS``): a client
    removed on another host is still known here for a few seconds, and its token cannot
    be stored (foreign key). Nothing was stored; the client is forgotten and the answer
    is the OAuth error of a client (or grant) that no longer exists, not a 500.
    """
    store.rollback()
    client_id = forget_client()
    if client_id is not None and find_client(client_id) is None:
        return server.handle_error_response(None, InvalidClientError(
            status_code=401, description="The client does not exist on this server."))
    return server.handle_error_response(None, InvalidGrantError("The authorization grant no longer exists."))
