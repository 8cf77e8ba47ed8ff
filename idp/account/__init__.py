"""« Mon compte – Sécurité »: the insured person's security space (issue 12), ``/mon-compte/securite``.

On the provider's own login session (:mod:`idp.sessions`): without one, the space
starts a login of its own (no relying party) and comes back. Reading needs the
session; every change needs a fresh login with the second factor (:mod:`.guard`).

=========================================  ===============================================
``/mon-compte/securite``                   overview, « Se déconnecter de tous les appareils »
``/mon-compte/securite/navigateurs``       trusted browsers: list, revoke one, revoke all
``/mon-compte/securite/activite``          the person's logins and security events
``/mon-compte/securite/mot-de-passe``      change the password (current one first)
``/mon-compte/securite/adresse-mail``      change the e-mail address (validated by a link)
``/mon-compte/securite/application``       the authenticator app and the recovery codes
                                           (:mod:`.second_factor`: enrol, codes shown once, remove)
=========================================  ===============================================

Imports: this package sits beside :mod:`idp.recovery` (it reuses the password
change's pieces and the mail jobs) above :mod:`idp.login`, :mod:`idp.mfa` and
:mod:`idp.oidc`; only :mod:`idp.cli` imports it.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("account", __name__, url_prefix="/mon-compte/securite")

from . import second_factor, views  # noqa: E402,F401  (the routes register on bp)

__all__ = ["bp"]
