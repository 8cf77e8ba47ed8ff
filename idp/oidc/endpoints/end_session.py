"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), by GET or by POST.

The session ends at once only when the ``id_token_hint`` names this browser's
person for the client it was issued to (the ``sub`` of that client, see
:func:`.authorize.hint_names`; an expired hint is fine), and the browser goes to
the exact registered ``post_logout_redirect_uri`` (with ``state``). Any other
valid hint (another person's ID token, an old one found anywhere) or no hint at
all: the person confirms first, on a CSRF-protected form (a logout CSRF must not
end a session). An invalid hint (bad signature, ``alg=none``, HS256 signed with a
public key, another issuer) is an error page and the session is left alone.

Relying parties may POST the parameters form-encoded (§2): the ``id_token_hint``
then stays out of the access logs. Such a cross-site POST carries no session
cookie (SameSite=Lax), so it is answered by the confirmation page, whose own
POST does. A redirect that answers a POST is a 303.

Ending the session revokes its grants and tells every client that took part in it
(OIDC Back-Channel Logout 1.0, :mod:`idp.oidc.backchannel`), in the background: the
person's page never waits for a relying party.
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import current_app, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm

from ... import security_headers, sessions
from ...extensions import db
from .. import backchannel, keys
from ..server import server
from . import bp
from .authorize import hint_names


class EndSessionEndpoint(_EndSessionEndpoint):
    def get_server_jwks(self):
        return keys.public_key_set()

    def get_algorithms(self) -> list[str]:
        return list(keys.SUPPORTED_ALGS)

    def _validate_id_token_hint(self, id_token_hint: str) -> dict:
        if len(id_token_hint) > 8192:
            raise OAuth2Error("id_token_hint too long", error="invalid_request")
        claims = super()._validate_id_token_hint(id_token_hint)
        if claims.get("iss") != current_app.config["IDP_ISSUER"]:
            raise OAuth2Error("id_token_hint from another issuer", error="invalid_request")
        return claims

    def end_session(self, end_session_request) -> None:
        announcement = backchannel.sessions_ended(sessions.end(commit=False))
        db.session.commit()
        announcement.send()


server.register_endpoint(EndSessionEndpoint)


def ends_without_asking(req) -> bool:
    """Whether the verified hint names this browser's person for the client it was issued to.

    Without a session there is nothing to end, except that a cross-site POST never
    carries the session cookie (SameSite=Lax): a GET goes on, a POST asks.
    """
    if req.id_token_claims is None or req.client is None:
        return False
    session = sessions.current()
    if session is None:
        return request.method == "GET"
    return hint_names(req.request.payload.data["id_token_hint"], session, req.client.client_id)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    try:
        req = server.validate_endpoint_request(EndSessionEndpoint.ENDPOINT_NAME)
    except OAuth2Error as error:
        db.session.rollback()
        return render_template("logout/error.html", error=error), 400
    if not ends_without_asking(req):
        form = FlaskForm()
        if request.method == "GET" or not form.validate_on_submit():
            security_headers.allow_form_redirect(req.redirect_uri)  # the form's answer goes there
            return render_template("logout/confirm.html", form=form, client=req.client)
    response = server.create_endpoint_response(EndSessionEndpoint.ENDPOINT_NAME, req)
    if response is None:
        if request.method == "POST":
            # Post/Redirect/Get: the confirmation's answer is a page a reload does not post again.
            session["idp_logout_client"] = req.client.name if req.client is not None else ""
            return redirect(url_for("oidc.logout_done"), code=303)
        return render_template("logout/done.html", client=req.client)
    if request.method == "POST" and response.status_code == 302:
        response.status_code = 303  # never re-send the form to the relying party (RFC 9700 §4.12)
    return response


@bp.route("/logout/termine")
def logout_done():
    """The page after « Me déconnecter » when the partner registered no address to go back to.

    The partner's registered name is kept for this one page in the provider's signed session
    (no secret, nothing taken from this request).
    """
    name = session.pop("idp_logout_client", None)
    return render_template("logout/done.html", client={"name": name} if name else None)
