"""Authentication context classes (``acr``) and methods (``amr``, RFC 8176).

``acr`` says how the person was authenticated, from the strongest:

* ``urn:idp:acr:mfa`` — NIR, password and a security code received by email in
  this login (``amr``: ``pwd``, ``otp``, ``mfa``). A relying party that puts it
  first among the known ``acr_values``, or asks for it as an essential ``acr``
  (:class:`AcrRequest`), gets the code step even on a trusted device;
* ``urn:idp:acr:device`` — NIR and password on a browser where a code was
  entered within the trusted-device lifetime (``amr``: ``pwd``);
* ``urn:idp:acr:pwd`` — NIR and password only.
"""

from . import claims_request

ACR_MFA = "urn:idp:acr:mfa"
ACR_DEVICE = "urn:idp:acr:device"
ACR_PASSWORD = "urn:idp:acr:pwd"

SUPPORTED_ACR_VALUES = (ACR_MFA, ACR_DEVICE, ACR_PASSWORD)


class AcrRequest:
    """What a relying party asked about ``acr``, from ``acr_values`` and the ``claims`` parameter.

    OIDC Core §3.1.2.1: ``acr_values`` asks for ``acr`` as a *voluntary* claim, in order
    of preference; values this provider does not know are ignored and the known ones
    honoured. §5.5.1.1: ``{"id_token": {"acr": {"essential": true, "values": [...]}}}``
    (or ``"value"``) makes it *essential*: the ``acr`` returned MUST be one of the values,
    or the authentication fails. When both are sent, the ``claims`` parameter wins (it
    is the more precise request).

    What "honoured" means here: the code step is always possible, so ``urn:idp:acr:mfa``
    can always be delivered; ``urn:idp:acr:device`` only on a browser already trusted,
    and ``urn:idp:acr:pwd`` never on purpose (the journey always asks for more). So:

    * voluntary, ``urn:idp:acr:mfa`` first among the known values: the code step even on
      a trusted browser, and a session without it is not reused (as before);
    * essential: a session or a login whose ``acr`` is one of the values; the trusted
      browser shortcut only if ``urn:idp:acr:device`` is one of them; refused at once
      (:meth:`satisfiable`) when ``urn:idp:acr:mfa`` is not, since nothing else can be
      promised before the person is known.
    """

    __slots__ = ("values", "essential")

    def __init__(self, values: tuple[str, ...] = (), essential: bool = False):
        self.values = values  # the known values asked for, in the client's order of preference
        self.essential = essential

    @classmethod
    def from_params(cls, params) -> "AcrRequest":
        """From the authorization request's parameters; a malformed ``claims`` counts as absent
        (it is refused by :func:`idp.oidc.checks.check_claims_request`)."""
        asked = (params.get("acr_values") or "").split()
        essential = False
        try:
            individual = claims_request.individual(claims_request.parse(params.get("claims")), "id_token", "acr")
        except claims_request.ClaimsRequestError:
            individual = None
        if individual is not None and ("values" in individual or "value" in individual):
            # Without values, an essential acr is met by any authentication: nothing to enforce.
            essential = individual.get("essential") is True
            asked = [*individual.get("values", []), *([individual["value"]] if "value" in individual else [])]
        return cls(tuple(dict.fromkeys(v for v in asked if v in SUPPORTED_ACR_VALUES)), essential)

    def satisfiable(self) -> bool:
        """False for an essential request that no authentication here can be sure to meet."""
        return not self.essential or ACR_MFA in self.values

    def accepts(self, acr: str | None) -> bool:
        """Whether an authentication of this ``acr`` (a live session's) answers the request."""
        if self.essential:
            return acr in self.values
        return not self.values or self.values[0] != ACR_MFA or acr == ACR_MFA

    def requires_code(self) -> bool:
        """Whether the security code is asked even on a trusted browser."""
        if self.essential:
            return ACR_DEVICE not in self.values
        return bool(self.values) and self.values[0] == ACR_MFA
