"""Revocation (RFC 7009). Revoking a refresh token revokes its whole grant."""

from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint

from ...extensions import db
from ...models import Grant, utcnow
from ..grants import TokenStore
from ..server import server
from . import bp


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string, token_type_hint):
        return TokenStore.find(token_string, token_type_hint)

    def revoke_token(self, token, request):
        if token.matched == "refresh_token" and token.grant_id is not None:
            # RFC 7009 §2.1: a refresh token's access tokens go with it.
            Grant.revoke(token.grant_id)
        token.access_revoked_at = token.access_revoked_at or utcnow()
        db.session.commit()


server.register_endpoint(RevocationEndpoint)


@bp.route("/revoke", methods=["POST"])
def revoke():
    return server.create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)
