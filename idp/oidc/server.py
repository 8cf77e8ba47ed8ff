"""The authorization server: Authlib's, with our storage and policy plugged in."""

from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import current_app
from sqlalchemy import select

from .. import crypto
from ..extensions import db
from ..models import Client
from .checks import AuthorizationChecks
from .grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    IdTokenIssuer,
    OpenIDCodeExtension,
    RefreshTokenGrant,
    RequireS256,
    TokenStore,
)


class StoredAuthorizationRequest(OAuth2Request):
    """An authorization request replayed from the parameters a login flow kept.

    The person went through several pages between ``/authorize`` and the code;
    the request they started from is rebuilt here, and Authlib validates it again.
    """

    def __init__(self, params: dict[str, str]):
        super().__init__("GET", current_app.config["IDP_ISSUER"] + "/authorize")
        self.payload = BasicOAuth2Payload(params)

    @property
    def args(self):
        return self.payload.data

    @property
    def form(self):
        return {}


class Issuer(IssuerParameter):
    """RFC 9207: ``iss`` in every authorization response, errors included."""

    def get_issuer(self) -> str:
        return current_app.config["IDP_ISSUER"]


class OpenIDProvider(AuthorizationServer):
    def init_app(self, app, query_client=None, save_token=None):
        super().init_app(app, query_client=find_client, save_token=TokenStore.save)
        self.register_grant(AuthorizationCodeGrant, [AuthorizationChecks(), OpenIDCodeExtension(), RequireS256()])
        self.register_grant(RefreshTokenGrant, [IdTokenIssuer()])
        self.register_grant(ClientCredentialsGrant)
        self.register_extension(Issuer())

    def load_config(self, config):
        def expires_in(client, grant_type):
            return current_app.config["IDP_ACCESS_TOKEN_LIFETIME"]

        generator = BearerTokenGenerator(
            access_token_generator=lambda **kw: crypto.random_token(32),
            refresh_token_generator=lambda **kw: crypto.random_token(32),
            expires_generator=expires_in,
        )
        self.register_token_generator("default", generator)
        self.scopes_supported = None  # unknown scopes are dropped by the client, not refused

    def create_oauth2_request(self, request):
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def authorization_error_response(self, request, error):
        """An error raised before Authlib's own response: add ``state`` and ``iss``."""
        error.state = request.payload.state if request is not None else None
        response = self.handle_error_response(request, error)
        if error.redirect_uri and response.location:
            response.location = add_params_to_uri(response.location, {"iss": current_app.config["IDP_ISSUER"]})
        return response


def find_client(client_id: str | None) -> Client | None:
    if not client_id or len(client_id) > 64:
        return None
    return db.session.scalar(select(Client).where(Client.client_id == client_id))


class AccessTokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string: str):
        token = TokenStore.find(token_string, "access_token")
        return token if token is not None and token.matched == "access_token" else None

    def validate_token(self, token, scopes, request):
        super().validate_token(token, scopes, request)
        if token.user is None:
            from authlib.oauth2.rfc6750 import InvalidTokenError

            raise InvalidTokenError(description="This token does not represent a person.")


server = OpenIDProvider()
resource_protector = ResourceProtector()
resource_protector.register_token_validator(AccessTokenValidator())
