"""One module per endpoint of the OpenID Provider, all on one blueprint.

The blueprint is exempt from the CSRF protection of the HTML forms: its POST
endpoints are called by relying parties, authenticated by OAuth means.
"""

from flask import Blueprint

bp = Blueprint("oidc", __name__)

from . import authorize, discovery, end_session, introspection, jwks, revocation, token, userinfo  # noqa: E402,F401
