"""The demo: a relying party and a mailbox served beside the provider, under ``/demo``.

Served only when ``IDP_DEMO`` is on (never in production), after ``idp demo``
registered the demo relying party and created the demo accounts:

* ``/demo/`` — what the demo is, the demo accounts, « Se connecter avec mon compte ameli »;
* ``/demo/callback`` — the relying party's side: Authlib's Flask client exchanges the
  code (PKCE S256, client secret), validates the ID token (signature, ``iss``,
  ``aud``, ``nonce``), fetches the userinfo, and shows both;
* ``/demo/logout`` — RP-initiated logout at the provider, back to ``/demo/``;
* ``/demo/mailbox`` — « Boîte mail de démonstration »: the mails the ``console://``
  transport kept, so that a newcomer reads security codes in the browser.

The relying party calls the provider's token and userinfo endpoints over HTTP,
on the same server, while it answers ``/demo/callback``: serve it with threads
(``idp run`` is threaded; with ``idp serve``, ``--threads 2`` or more than one worker).

Modules: :mod:`.accounts` (demo people), :mod:`.credentials` (the client's
credentials file), :mod:`.rp` (the Authlib client and its own cookie),
:mod:`.mailbox` (reading the outbox), :mod:`.views` (the pages).
"""

from .views import bp

__all__ = ["bp"]
