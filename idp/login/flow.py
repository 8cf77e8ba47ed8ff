"""The server-side state of one login in progress.

A :class:`~idp.models.LoginFlow` row keeps the authorization request it serves,
the user once known and the steps passed. The browser holds only a random
256-bit identifier in an HttpOnly cookie, renewed after each step that raises
the level of trust (ASVS 7.2.4), so an identifier seen before login is worthless
after it. The identifier is stored as a keyed hash.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import current_app, g, redirect, request, url_for
from sqlalchemy import bindparam, inspect, select, update
from sqlalchemy.orm import joinedload

from .. import cookies, crypto, nir, security_headers, sessions
from ..extensions import db
from ..models import LoginFlow, utcnow
from ..oidc.server import StoredAuthorizationRequest, server

COOKIE = "idp_flow"
PURPOSE = "login-flow"


#: The flow of a cookie, with its person (once known) and its partner site: every step reads them.
#: Built once, not at every request (building it, and its cache key, cost more than running it).
_CURRENT = (
    select(LoginFlow).options(joinedload(LoginFlow.user), joinedload(LoginFlow.client)).where(LoginFlow.flow_hash == bindparam("flow_hash"))
)
_COLUMNS = frozenset(LoginFlow.__table__.c.keys())


def _cookie(raw: str) -> None:
    g.idp_flow_cookie = raw


def start(oauth_request):
    """Keep the validated authorization request and send the browser to the first step."""
    raw = crypto.random_token(32)
    params = {k: v for k, v in oauth_request.payload.data.items()}
    hint = params.get("login_hint")
    flow = LoginFlow(
        flow_hash=crypto.keyed_hash(PURPOSE, raw),
        client_id=oauth_request.client.id,
        authorization_params=params,
        login_hint=nir.normalize(hint) if hint and nir.is_valid(hint) else None,
        expires_at=utcnow() + timedelta(seconds=current_app.config["IDP_LOGIN_FLOW_LIFETIME"]),
    )
    db.session.add(flow)
    db.session.commit()
    _cookie(raw)
    return redirect(url_for("login.step"))


def start_for_account(return_to: str, second_factor_required: bool, login_hint: str | None = None):
    """A login started by the security space itself: no relying party, back to ``return_to`` after it.

    ``second_factor_required``: the fresh login before a change, which asks for the
    second factor even on a trusted browser (:class:`~idp.mfa.steps.TrustedDeviceStep`).
    """
    raw = crypto.random_token(32)
    flow = LoginFlow(
        flow_hash=crypto.keyed_hash(PURPOSE, raw),
        client_id=None,
        authorization_params={},
        purpose=ACCOUNT,
        return_to=return_to,
        second_factor_required=second_factor_required,
        login_hint=login_hint,
        expires_at=utcnow() + timedelta(seconds=current_app.config["IDP_LOGIN_FLOW_LIFETIME"]),
    )
    db.session.add(flow)
    db.session.commit()
    _cookie(raw)
    return redirect(url_for("login.step"), code=303)


#: ``LoginFlow.purpose`` of the security space's own logins.
ACCOUNT = "account"


def current() -> LoginFlow | None:
    raw = request.cookies.get(cookies.name(COOKIE))
    if not raw or len(raw) > 100:
        return None
    flow = db.session.scalar(_CURRENT, {"flow_hash": crypto.keyed_hash(PURPOSE, raw)})
    if flow is None or flow.completed_at is not None or utcnow() >= flow.expires_at:
        return None
    # The pages of a login in progress post forms that the relying party's redirect may answer.
    security_headers.allow_form_redirect(flow.authorization_params.get("redirect_uri"))
    return flow


def renew_identifier(flow: LoginFlow) -> None:
    raw = crypto.random_token(32)
    flow.flow_hash = crypto.keyed_hash(PURPOSE, raw)
    _cookie(raw)


def _close(flow: LoginFlow) -> bool:
    """Mark the flow finished; False when a double submit already did.

    One conditional UPDATE, which also writes what this request changed in the flow
    (the steps passed, the renewed identifier, the person): the flow is then taken out
    of the session, so that the request's commit does not write it a second time.
    """
    state = inspect(flow)
    changed = {attr.key: attr.value for attr in state.attrs if attr.key in _COLUMNS and attr.history.has_changes()}
    table = LoginFlow.__table__
    done = db.session.connection().execute(
        update(table).where(table.c.id == flow.id, table.c.completed_at.is_(None))
        .values(completed_at=utcnow(), **changed)
    )
    if done.rowcount != 1:
        db.session.rollback()
        return False
    db.session.expunge(flow)
    _cookie("")
    return True


def complete(flow: LoginFlow, amr: list[str], acr: str):
    """Open the login session and answer the relying party's authorization request."""
    if not _close(flow):
        return None
    auth = sessions.start(flow.user_id, int(time.time()), amr, acr)
    if flow.purpose == ACCOUNT:  # the security space's own login: back to its page
        return redirect(flow.return_to, code=303)
    return resume(flow, grant_user=auth)


def cancel(flow: LoginFlow, error_class=None):
    """The person gave up: the relying party receives ``access_denied`` (or ``error_class``)."""
    if not _close(flow):
        return None
    db.session.commit()
    if flow.purpose == ACCOUNT:  # no relying party to answer: the page that says so
        return redirect(url_for("account.cancelled"), code=303)
    return resume(flow, grant_user=None, error_class=error_class)


def resume(flow: LoginFlow, grant_user, error_class=None):
    """Answer the stored authorization request (with a code, or ``access_denied``).

    Authlib redirects with 302. After a POST (the last step's form, « Annuler ») the
    answer is a 303 (RFC 9700 §4.11, §4.12): a browser must never re-send the form,
    with its password or code, to the relying party. GET answers stay 302.
    """
    oauth_request = StoredAuthorizationRequest(flow.authorization_params)
    grant = server.get_authorization_grant(oauth_request)
    if error_class is not None:
        response = server.create_refusal_response(oauth_request, grant, error_class)
    else:
        response = server.create_authorization_response(request=oauth_request, grant_user=grant_user, grant=grant)
    if request.method == "POST" and response.status_code == 302:
        response.status_code = 303
    return response


def apply_cookie(response):
    """``after_request``: set or clear the flow cookie decided during the request."""
    raw = g.pop("idp_flow_cookie", None)
    if raw:
        response.set_cookie(cookies.name(COOKIE), raw, max_age=current_app.config["IDP_LOGIN_FLOW_LIFETIME"], **sessions.cookie_options())
    elif raw == "":
        response.delete_cookie(cookies.name(COOKIE), **sessions.cookie_options())
    return response
