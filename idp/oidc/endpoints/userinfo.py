"""UserInfo (OIDC Core §5.3): GET and POST, claims by the token's scopes, JSON or a signed JWT.

The access token comes in the ``Authorization`` header or, on a POST, in the form body
(RFC 6750 §2.2; :class:`idp.oidc.server.BearerProtector`). A client registered with a
``userinfo_signed_response_alg`` gets ``application/jwt`` (§5.3.2): the claims with ``iss``
and ``aud``, signed by the provider's active key of that algorithm, its ``kid`` in the
header so that the JWKS verifies it as it verifies ID tokens.
"""

from authlib.consts import default_json_headers
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint
from flask import current_app
from joserfc import jwt

from .. import claims_request, keys, store
from ..claims import pairwise_sub, user_claims
from ..server import resource_protector, server
from . import bp


class UserInfoEndpoint(_UserInfoEndpoint):
    def __call__(self, request):
        token = self.resource_protector.acquire_token("openid")
        client = token.get_client()
        info = claims_request.for_userinfo(user_claims(token.get_user(), token.scope),
                                           token.grant.claims if token.grant is not None else None)
        info["sub"] = pairwise_sub(token.get_user(), client)
        alg = client.client_metadata.get("userinfo_signed_response_alg")
        if not alg:
            return 200, info, default_json_headers
        info["iss"] = self.get_issuer()
        info["aud"] = client.client_id
        key = keys.signing_key(alg)
        signed = jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, info, key, [alg])
        return 200, signed, [("Content-Type", "application/jwt"), ("Cache-Control", "no-store"),
                             ("Pragma", "no-cache")]

    def get_issuer(self) -> str:
        return current_app.config["IDP_ISSUER"]


server.register_endpoint(UserInfoEndpoint(resource_protector=resource_protector))


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    store.autocommit()  # one SELECT
    return server.create_endpoint_response(UserInfoEndpoint.ENDPOINT_NAME)
