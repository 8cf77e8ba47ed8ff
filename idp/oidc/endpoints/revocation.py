"""Revocation (RFC 7009). Revoking a refresh token revokes its whole grant."""

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint

from ... import audit
from ...models import Grant
from .. import store
from ..client_auth import commit_used_assertion
from ..grants import ALL_AUTH_METHODS
from ..store import TokenStore
from ..server import server
from . import bp


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def check_params(self, request, client):
        # The hint is only a hint: an unknown one is ignored and every kind searched
        # (RFC 7009 §2.1, RFC 7662 §2.1). Authlib answered it with a 401.
        if "token" not in request.form:
            raise InvalidRequestError("Missing 'token'.")

    def query_token(self, token_string, token_type_hint):
        return TokenStore.find(token_string, token_type_hint)

    def revoke_token(self, token, request):
        if token.matched == "refresh_token" and token.grant_id is not None:
            # RFC 7009 §2.1: a refresh token's access tokens go with it.
            Grant.revoke(store.connection(), token.grant_id)
        if token.access_revoked_at is None:
            token.revoke_access(store.connection())
        # The relying party's own revocation (a logout, usually): one row, in the same transaction.
        audit.record("tokens_revoked", user_id=token.user_id, client_id=request.client.get_client_id(),
                     detail={"reason": "revocation-endpoint", "token_type": token.matched},
                     connection=store.connection())
        store.commit()


server.register_endpoint(RevocationEndpoint)


@bp.route("/revoke", methods=["POST"])
def revoke():
    response = server.create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)
    commit_used_assertion()  # an unknown token revokes nothing, and commits nothing else
    return response
