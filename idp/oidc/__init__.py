"""The OpenID Provider: Authlib's authorization server with our storage and policy.

* :mod:`.server` — the server object, its grants and the token store wiring;
* :mod:`.grants` — code (PKCE S256), refresh (rotating), client credentials, ID tokens;
* :mod:`.checks` — the named checks of an authorization request;
* :mod:`.claims` — pairwise ``sub`` and claims by scope;
* :mod:`.cors` — which browser origins may call the back channel;
* :mod:`.keys` — signing keys in the database, encrypted, rotated from the CLI;
* :mod:`.endpoints` — one module per endpoint.
"""

from . import cors, store
from .endpoints import bp
from .server import server


def init_app(app) -> None:
    server.init_app(app)
    app.register_blueprint(bp)
    cors.init_app(app)
    app.teardown_request(store.close_connection)
    app.teardown_appcontext(store.close_connection)
