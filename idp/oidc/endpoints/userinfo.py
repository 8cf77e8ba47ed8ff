"""UserInfo (OIDC Core §5.3), GET and POST, claims by the token's scopes."""

from authlib.integrations.flask_oauth2 import current_token
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint

from .. import store
from ..claims import pairwise_sub, user_claims
from ..server import resource_protector, server
from . import bp


class UserInfoEndpoint(_UserInfoEndpoint):
    def generate_user_info(self, user, scope):
        info = user_claims(user, scope)
        info["sub"] = pairwise_sub(user, current_token.client)
        return info


server.register_endpoint(UserInfoEndpoint(resource_protector=resource_protector))


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    store.autocommit()  # one SELECT
    return server.create_endpoint_response(UserInfoEndpoint.ENDPOINT_NAME)
