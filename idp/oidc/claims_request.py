"""The ``claims`` request parameter (OIDC Core §5.5): which claims go where.

The rule of this provider (OIDC Core §5.4, §5.5):

* the ID token carries the authentication only (:data:`ID_TOKEN_BASE`: ``iss sub aud
  exp iat auth_time nonce acr amr at_hash sid``), plus the claims a client asked for in
  its ``id_token`` member. Relying parties send ID tokens back in logout URLs
  (``id_token_hint``), where they land in access logs and browser histories: a
  person's names, birth date or health-insurance affiliation have no place there
  unless the client asked for them there;
* UserInfo returns every claim of the granted scopes (``profile``, ``email``,
  ``affiliation``), as before; its ``userinfo`` member can ask for nothing more;
* a claim outside the granted scopes is never released, wherever it is asked for
  (the scopes are what the client is registered for, and what the person was told).

The parameter is parsed and checked at ``/authorize``
(:func:`idp.oidc.checks.check_claims_request`): malformed JSON or members of the wrong
type are ``invalid_request``. What is kept with the grant (:attr:`idp.models.Grant.claims`)
is only the names of the releasable claims asked for in each member (:func:`requested`), so
that it applies at the token endpoint, on every refresh and at UserInfo. ``acr``
requests are read from the same parameter by :mod:`idp.oidc.acr`.
"""

from __future__ import annotations

import json

from .claims import SUPPORTED_CLAIMS

#: What every ID token carries (OIDC Core §2): the authentication, nothing about the person.
#: (``sid``: OIDC Back-Channel Logout §2.1, the login session, not the person.)
ID_TOKEN_BASE = ("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash", "sid")

#: The two members of the parameter this provider understands (§5.5); others are ignored.
MEMBERS = ("userinfo", "id_token")

#: Claims that can be asked for individually: those of a scope (``sub`` is always there).
RELEASABLE = tuple(c for c in SUPPORTED_CLAIMS if c != "sub")


class ClaimsRequestError(ValueError):
    """The ``claims`` parameter is not what §5.5 describes (sent back as ``invalid_request``)."""


def parse(raw: str | None) -> dict | None:
    """The parameter as a JSON object, its types checked; None when absent.

    §5.5: a JSON object whose ``userinfo`` and ``id_token`` members are objects; each
    member maps a claim name to ``null`` or to an object where ``essential`` is a
    boolean, ``values`` an array (``value`` any JSON value). Members and keys that
    are not understood are ignored, as the spec requires. The length was bounded
    before (``IDP_MAX_PARAMETER_LENGTH``), and nesting deep enough to exhaust the
    parser's recursion is refused like any malformed JSON.
    """
    if raw is None:
        return None
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise ClaimsRequestError("'claims' is not valid JSON.") from error
    if not isinstance(document, dict):
        raise ClaimsRequestError("'claims' must be a JSON object.")
    for member in MEMBERS:
        if member not in document:
            continue
        requests = document[member]
        if not isinstance(requests, dict):
            raise ClaimsRequestError(f"'claims.{member}' must be a JSON object.")
        for name, request in requests.items():
            _check_individual(member, name, request)
    return document


def _check_individual(member: str, name: str, request) -> None:
    # The claim's name is not quoted back: an OAuth error description refuses quotes and
    # non-ASCII characters, which a name may hold.
    where = f"A claim request in 'claims.{member}'"
    if request is None:
        return
    if not isinstance(request, dict):
        raise ClaimsRequestError(f"{where} must be null or a JSON object.")
    if "essential" in request and not isinstance(request["essential"], bool):
        raise ClaimsRequestError(f"{where}: 'essential' must be true or false.")
    if "values" in request and not isinstance(request["values"], list):
        raise ClaimsRequestError(f"{where}: 'values' must be an array.")
    if name == "acr":  # compared with our acr values: strings only
        if "value" in request and not isinstance(request["value"], str):
            raise ClaimsRequestError(f"{where}: 'value' of acr must be a string.")
        if not all(isinstance(v, str) for v in request.get("values", [])):
            raise ClaimsRequestError(f"{where}: 'values' of acr must be strings.")


def requested(document: dict | None) -> dict[str, list[str]] | None:
    """What the grant keeps: per member, the releasable claims asked for (known names only)."""
    if not document:
        return None
    kept = {member: sorted(n for n in document.get(member, {}) if n in RELEASABLE) for member in MEMBERS}
    kept = {member: names for member, names in kept.items() if names}
    return kept or None


def individual(document: dict | None, member: str, name: str) -> dict | None:
    """The individual request for one claim (§5.5.1): ``{}`` for ``null``; None when not asked for."""
    if not document or name not in document.get(member, {}):
        return None
    return document[member][name] or {}


def for_id_token(scope_claims: dict, kept: dict | None) -> dict:
    """The person's claims that go in the ID token: asked for there, and allowed by the scopes.

    ``scope_claims`` are the claims of the granted scopes (:func:`idp.oidc.claims.user_claims`).
    """
    names = (kept or {}).get("id_token", ())
    return {name: scope_claims[name] for name in names if name in scope_claims}


def for_userinfo(scope_claims: dict, kept: dict | None) -> dict:
    """UserInfo: every claim of the granted scopes, and those the ``userinfo`` member asked for
    if the scopes allow them (which adds nothing today: the scopes bound what is released)."""
    names = set(scope_claims) | set((kept or {}).get("userinfo", ()))
    return {name: scope_claims[name] for name in names if name in scope_claims}
