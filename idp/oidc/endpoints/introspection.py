"""Introspection (RFC 7662), for authenticated clients, about their own tokens."""

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from flask import current_app

from ...models.clock import epoch
from ..claims import pairwise_sub
from .. import store
from ..client_auth import commit_used_assertion
from ..grants import CONFIDENTIAL_AUTH_METHODS
from ..store import TokenStore
from ..server import server
from . import bp


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def check_params(self, request, client):
        # The hint is only a hint: an unknown one is ignored and every kind searched
        # (RFC 7009 §2.1, RFC 7662 §2.1). Authlib answered it with a 401.
        if "token" not in request.form:
            raise InvalidRequestError("Missing 'token'.")

    def query_token(self, token_string, token_type_hint):
        return TokenStore.find(token_string, token_type_hint)

    def check_permission(self, token, client, request):
        # A client learns about its own tokens only.
        return token.client_id == client.id

    def create_introspection_payload(self, token):
        if token is not None and token.matched == "refresh_token" and not token.refresh_usable():
            return {"active": False}
        if token is not None and token.matched == "refresh_token":
            return self.introspect_token(token)
        return super().create_introspection_payload(token)

    def introspect_token(self, token):
        payload = {
            "active": True,
            "client_id": token.client.client_id,
            "token_type": "Bearer" if token.matched == "access_token" else "refresh_token",
            "scope": token.scope,
            "iss": current_app.config["IDP_ISSUER"],
            "iat": epoch(token.issued_at),
            "exp": epoch(token.expires_at if token.matched == "access_token" else token.refresh_expires_at),
            "aud": token.client.client_id,
        }
        if token.user is not None:
            payload["sub"] = pairwise_sub(token.user, token.client)
        return payload


server.register_endpoint(IntrospectionEndpoint)


@bp.route("/introspect", methods=["POST"])
def introspect():
    store.autocommit()  # reads only
    response = server.create_endpoint_response(IntrospectionEndpoint.ENDPOINT_NAME)
    commit_used_assertion()  # SQLite: the jti row of a signed client (PostgreSQL: committed by itself)
    return response
