"""Who may see the security space, and when a change needs a fresh login.

* :func:`session_required` — the reading pages: the provider's login session. Without
  one, the space starts its own login (:func:`idp.login.flow.start_for_account`, no
  relying party) and the browser comes back to the page once logged in.
* :func:`fresh_login_required` — every change (and the pages that exist only to make
  one): the session's last authentication must be at most ``IDP_ACCOUNT_REAUTH``
  seconds old **and** have included the second factor (``mfa`` in its ``amr``). Otherwise
  a new login is started whose flow has ``second_factor_required`` set, so that the
  trusted-browser shortcut does not apply: a stolen session or an unattended trusted
  computer is not enough to change the password, the address or the trusted browsers.

A POST refused this way changes nothing and answers 303 to the login; back on the
page, the person submits again.
"""

from __future__ import annotations

import time
from functools import wraps

from flask import current_app, g, request, url_for

from .. import sessions
from ..login import flow as login_flows
from ..models import BrowserSession


def person_session() -> BrowserSession:
    """The session the guard let through (in a view decorated by either guard)."""
    return g.idp_account_session


def is_fresh(row: BrowserSession) -> bool:
    """Authenticated with the second factor, at most ``IDP_ACCOUNT_REAUTH`` seconds ago."""
    age = time.time() - row.auth_time
    return "mfa" in (row.amr or []) and 0 <= age <= current_app.config["IDP_ACCOUNT_REAUTH"]


def _return_to(back: str | None) -> str:
    """Where the login comes back: the page itself for a GET, the page of the form for a POST."""
    if request.method == "GET":
        return request.path
    return url_for(back or "account.index")


def session_required(view):
    @wraps(view)
    def guarded(*args, **kwargs):
        row = sessions.current()
        if row is None:
            return login_flows.start_for_account(_return_to(None), second_factor_required=False)
        g.idp_account_session = row
        return view(*args, **kwargs)

    return guarded


def fresh_login_required(back: str | None = None):
    """Decorator factory; ``back``: the endpoint of the page whose form posts to this view."""

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            row = sessions.current()
            if row is None or not is_fresh(row):
                hint = row.user.nir if row is not None else None
                return login_flows.start_for_account(_return_to(back), second_factor_required=True, login_hint=hint)
            g.idp_account_session = row
            return view(*args, **kwargs)

        return guarded

    return decorate
