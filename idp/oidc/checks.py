"""Checks of the authorization request, run in order after Authlib's own.

Authlib has already checked the client, the exact redirect URI and the response
type (errors before that point show a page; no redirect to an unverified URI).
Each check below is small and named so that a reader can map it to the spec; it
raises an OAuth error that is sent back to the (verified) redirect URI. They run
in the order of :data:`CHECKS` (Authlib's hooks are an unordered set, so the
pipeline is one hook).
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import current_app

from authlib.oidc.core.grants.util import validate_nonce

from . import claims_request
from .acr import AcrRequest
from .grants import OpenIDCodeExtension, RequireS256

SINGLE_VALUED = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "prompt", "max_age",
    "code_challenge", "code_challenge_method", "login_hint", "acr_values", "response_mode",
    "ui_locales", "id_token_hint", "display", "claims_locales", "claims",
)


class RequestNotSupportedError(OAuth2Error):
    error = "request_not_supported"


class RequestUriNotSupportedError(OAuth2Error):
    error = "request_uri_not_supported"


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Error Code ``unmet_authentication_requirements`` 1.0 (final, 2022).

    Core §5.5.1.1 says an essential ``acr`` that cannot be met MUST be treated as a failed
    authentication; this error code was registered for exactly that case ("SHALL be used if
    the Relying Party wants the OP to conform to a certain Authentication Context Class
    Reference value using an essential claim acr"), and tells the relying party more than
    ``access_denied``, which reads as the person's refusal.
    """

    error = "unmet_authentication_requirements"


def check_single_values(grant) -> None:
    """RFC 6749 §3.1: parameters MUST NOT be included more than once."""
    datalist = grant.request.payload.datalist
    for name in SINGLE_VALUED:
        if len(datalist.get(name, [])) > 1:
            raise InvalidRequestError(f"Multiple '{name}' in request.")


def check_parameter_length(grant) -> None:
    limit = current_app.config["IDP_MAX_PARAMETER_LENGTH"]
    for name, values in grant.request.payload.datalist.items():
        if len(name) > 64 or any(len(v) > limit for v in values):
            raise InvalidRequestError(f"Parameter too long (limit {limit} characters).")


#: JSON's whitespace, allowed in the ``claims`` parameter (a client may send it pretty-printed).
_JSON_WHITESPACE = str.maketrans("", "", "\t\n\r")


def check_characters(grant) -> None:
    """No control characters: a NUL cannot even be stored (PostgreSQL refuses it)."""
    for name, values in grant.request.payload.datalist.items():
        if name == "claims":
            values = [v.translate(_JSON_WHITESPACE) for v in values]
        if not name.isprintable() or any(not v.isprintable() for v in values):
            raise InvalidRequestError("Control characters are not allowed in parameters.")


def check_openid_scope(grant) -> None:
    """This is an OpenID Provider: ``openid`` is required, and kept after filtering."""
    if "openid" not in scope_to_list(grant.request.payload.scope or ""):
        raise InvalidScopeError("The 'openid' scope is required.")
    if "openid" not in scope_to_list(grant.request.scope or ""):
        raise InvalidScopeError("This client is not registered for the 'openid' scope.")


def check_request_objects(grant) -> None:
    data = grant.request.payload.data
    if "request" in data:
        raise RequestNotSupportedError("Request objects are not supported.")
    if "request_uri" in data:
        raise RequestUriNotSupportedError("request_uri is not supported.")


def check_response_mode(grant) -> None:
    mode = grant.request.payload.data.get("response_mode")
    if mode not in (None, "query"):
        raise InvalidRequestError("Only response_mode=query is supported.")


class ConsentRequiredError(OAuth2Error):
    error = "consent_required"


class AccountSelectionRequiredError(OAuth2Error):
    error = "account_selection_required"


#: The ``prompt`` values this provider honours (``prompt_values_supported`` in discovery).
SUPPORTED_PROMPTS = ("none", "login")


def check_prompt(grant) -> None:
    """``none`` and ``login`` are honoured; the others cannot be (OIDC Core §3.1.2.1).

    There is no consent screen (relying parties are registered partners) and no
    account chooser (one person per browser session): the spec then requires an
    error, ``consent_required`` / ``account_selection_required``. Anything else is
    not a prompt value: ``invalid_request``.
    """
    prompt = grant.request.payload.data.get("prompt")
    if prompt is None:
        return
    values = prompt.split()
    if not values or not set(values) <= {*SUPPORTED_PROMPTS, "consent", "select_account"}:
        raise InvalidRequestError("Invalid 'prompt' value.")
    if "none" in values and len(values) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with another value.")
    if "consent" in values:
        raise ConsentRequiredError("This provider has no consent screen (prompt=consent is not supported).")
    if "select_account" in values:
        raise AccountSelectionRequiredError("This provider has no account chooser (prompt=select_account "
                                            "is not supported).")


def check_max_age(grant) -> None:
    max_age = grant.request.payload.data.get("max_age")
    if max_age is not None and parse_max_age(max_age) is None:
        raise InvalidRequestError("'max_age' must be a non-negative integer.")


def check_claims_request(grant) -> None:
    """OIDC Core §5.5: the ``claims`` parameter is a JSON object of the right shape."""
    try:
        claims_request.parse(grant.request.payload.data.get("claims"))
    except claims_request.ClaimsRequestError as error:
        raise InvalidRequestError(str(error)) from error


def check_acr_values(grant) -> None:
    """Unknown ``acr_values`` are ignored (a voluntary claim, Core §3.1.2.1); only an
    *essential* ``acr`` that no authentication here can meet is refused (§5.5.1.1)."""
    if not AcrRequest.from_params(grant.request.payload.data).satisfiable():
        raise UnmetAuthenticationRequirementsError(
            "The essential 'acr' cannot be met: urn:idp:acr:mfa is the level this provider can promise.")


_PKCE = RequireS256()
_OPENID = OpenIDCodeExtension()


def check_pkce(grant) -> None:
    """PKCE S256 (RFC 9700 §2.1.1); ``plain`` refused.

    Required of every client, except a confidential one an administrator allowed
    without (``idp clients update --pkce optional``): such a client may send no
    challenge at all, and must then send a ``nonce`` (:func:`check_nonce`). A
    challenge that is sent is always checked.
    """
    data = grant.request.payload.data
    if not data.get("code_challenge") and not data.get("code_challenge_method") \
            and not grant.request.client.needs_pkce:
        return
    _PKCE.validate_code_challenge(grant, None)


#: The longest nonce kept (the width of ``grants.nonce``).
NONCE_MAX_LENGTH = 255


def check_nonce(grant) -> None:
    """Nonce short enough to be kept, and never seen before from this client.

    OIDC Core §3.1.2.1 makes it optional in the code flow: it is required only when
    no PKCE challenge binds the code to this browser's request (RFC 9700 §2.1.1:
    then the nonce does). When present it is echoed in the ID token and replay-checked.
    """
    data = grant.request.payload.data
    if len(data.get("nonce") or "") > NONCE_MAX_LENGTH:
        raise InvalidRequestError(f"'nonce' is too long (limit {NONCE_MAX_LENGTH} characters).")
    if "nonce" in data and not data["nonce"]:
        raise InvalidRequestError("Empty 'nonce'.")
    validate_nonce(grant.request, _OPENID.exists_nonce, required=not data.get("code_challenge"))


def parse_max_age(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 10:
        return None
    return int(value)


CHECKS = (
    check_single_values,
    check_parameter_length,
    check_characters,
    check_request_objects,
    check_response_mode,
    check_openid_scope,
    check_pkce,
    check_nonce,
    check_prompt,
    check_max_age,
    check_claims_request,
    check_acr_values,
)


class AuthorizationChecks:
    """Registers :data:`CHECKS` on the code grant (an Authlib grant extension)."""

    def __call__(self, grant) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.run)

    @staticmethod
    def run(grant, redirect_uri) -> None:
        for check in CHECKS:
            check(grant)
