"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

With a valid ``id_token_hint`` the session ends at once and the browser goes to
the exact registered ``post_logout_redirect_uri`` (with ``state``). Without one,
the person confirms first, and stays here. An invalid hint (bad signature,
``alg=none``, HS256 signed with a public key, another issuer) is an error page.
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import current_app, render_template, request
from flask_wtf import FlaskForm

from ... import sessions
from ...extensions import db
from .. import keys
from ..server import server
from . import bp


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
        sessions.end()


server.register_endpoint(EndSessionEndpoint)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    try:
        req = server.validate_endpoint_request(EndSessionEndpoint.ENDPOINT_NAME)
    except OAuth2Error as error:
        db.session.rollback()
        return render_template("logout/error.html", error=error), 400
    if req.needs_confirmation:
        form = FlaskForm()
        if request.method == "GET" or not form.validate_on_submit():
            return render_template("logout/confirm.html", form=form, client=req.client)
    response = server.create_endpoint_response(EndSessionEndpoint.ENDPOINT_NAME, req)
    return response or render_template("logout/done.html", client=req.client)
