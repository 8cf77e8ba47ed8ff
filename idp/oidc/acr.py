"""Authentication context classes (``acr``) and methods (``amr``, RFC 8176).

``acr`` says how strongly the person was authenticated:

* ``urn:idp:acr:pwd`` — NIR and password;
* ``urn:idp:acr:mfa`` — NIR, password and a second factor (emailed code, or a
  trusted device on which a code was entered within its lifetime).
"""

ACR_PASSWORD = "urn:idp:acr:pwd"
ACR_MFA = "urn:idp:acr:mfa"

SUPPORTED_ACR_VALUES = (ACR_PASSWORD, ACR_MFA)
