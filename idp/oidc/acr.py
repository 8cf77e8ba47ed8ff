"""Authentication context classes (``acr``) and methods (``amr``, RFC 8176).

``acr`` says how the person was authenticated, from the strongest:

* ``urn:idp:acr:mfa`` — NIR, password and a security code received by email in
  this login (``amr``: ``pwd``, ``otp``, ``mfa``). A relying party that puts it
  first in ``acr_values`` always gets the code step, even on a trusted device;
* ``urn:idp:acr:device`` — NIR and password on a browser where a code was
  entered within the trusted-device lifetime (``amr``: ``pwd``);
* ``urn:idp:acr:pwd`` — NIR and password only.
"""

ACR_MFA = "urn:idp:acr:mfa"
ACR_DEVICE = "urn:idp:acr:device"
ACR_PASSWORD = "urn:idp:acr:pwd"

SUPPORTED_ACR_VALUES = (ACR_MFA, ACR_DEVICE, ACR_PASSWORD)
