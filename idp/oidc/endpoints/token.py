"""Token endpoint: authorization_code (PKCE), refresh_token (rotating), client_credentials."""

from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import request

from ...extensions import db
from ..server import server
from . import bp

#: RFC 6749 §3.2: request parameters MUST NOT be included more than once. Authlib reads
#: the first value of each; a second one is refused rather than silently ignored.
SINGLE_VALUED = (
    "grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope",
    "client_id", "client_secret",
)


@bp.route("/token", methods=["POST"])
def token():
    for name in SINGLE_VALUED:
        if len(request.values.getlist(name)) > 1:
            return server.handle_error_response(None, InvalidRequestError(f"Multiple '{name}' in request."))
    response = server.create_token_response()
    # One commit per request: the code or refresh token consumed and the tokens stored together,
    # after the answer is made (a failure before leaves nothing half done).
    db.session.commit()
    return response
