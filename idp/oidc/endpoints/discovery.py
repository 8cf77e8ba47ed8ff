"""OpenID Provider metadata (OIDC Discovery 1.0, RFC 8414, RFC 9207)."""

import hashlib
import json

from flask import current_app

from ..acr import SUPPORTED_ACR_VALUES
from ..checks import SUPPORTED_PROMPTS
from ..claims import SUPPORTED_CLAIMS, SUPPORTED_SCOPES
from ..client_auth import ALL_SIGNING_ALGS
from ..grants import ALL_AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from ..keys import SUPPORTED_ALGS
from . import bp, public_document


def metadata() -> dict:
    iss = current_app.config["IDP_ISSUER"]
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/jwks.json",
        "revocation_endpoint": f"{iss}/revoke",
        "introspection_endpoint": f"{iss}/introspect",
        "end_session_endpoint": f"{iss}/logout",
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "userinfo_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "token_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        # private_key_jwt and client_secret_jwt (RFC 7523): the algorithms a client may register.
        "token_endpoint_auth_signing_alg_values_supported": list(ALL_SIGNING_ALGS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(ALL_SIGNING_ALGS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ALL_SIGNING_ALGS),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash",
                             "sid", *SUPPORTED_CLAIMS],
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "acr_values_supported": list(SUPPORTED_ACR_VALUES),
        "prompt_values_supported": list(SUPPORTED_PROMPTS),
        "ui_locales_supported": ["fr-FR"],
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        # OIDC Back-Channel Logout 1.0 (idp/oidc/backchannel.py): logout tokens carry sid, ID tokens too.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }


def document() -> tuple[bytes, str]:
    """The metadata as served (bytes) and its ``ETag``, made once per application: nothing in it changes."""
    made = current_app.extensions.get("idp_discovery")
    if made is None:
        body = json.dumps(metadata(), separators=(",", ":")).encode()
        made = current_app.extensions["idp_discovery"] = (body, hashlib.sha256(body).hexdigest()[:32])
    return made


@bp.route("/.well-known/openid-configuration")
def openid_configuration():
    return public_document.serve(*document())


@bp.route("/.well-known/oauth-authorization-server")
def oauth_authorization_server():
    """RFC 8414 §3: the same document (its OpenID members are allowed there, §2), for OAuth-only clients.

    At this address for an issuer without a path; an issuer with a path needs the
    reverse proxy to route ``/.well-known/oauth-authorization-server/<path>`` here.
    """
    return public_document.serve(*document())
