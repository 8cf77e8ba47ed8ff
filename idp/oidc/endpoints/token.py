"""Token endpoint: authorization_code (PKCE), refresh_token (rotating), client_credentials."""

from ..server import server
from . import bp


@bp.route("/token", methods=["POST"])
def token():
    return server.create_token_response()
