"""The demo pages (French), on one blueprint mounted at ``/demo``.

Every route is a GET: nothing here changes the provider's data, so the demo needs
no CSRF exemption and never touches the provider's Flask session.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timezone

from authlib.integrations.base_client import OAuthError
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from . import credentials, mailbox, rp
from .accounts import DEMO_ACCOUNTS, DEMO_PASSWORD

log = logging.getLogger(__name__)

bp = Blueprint("demo", __name__, url_prefix="/demo")
bp.after_request(rp.save_session)


@bp.record_once
def _warn(state) -> None:
    state.app.logger.warning("IDP_DEMO is on: /demo serves a demo relying party and the demo mailbox. "
                             "Never turn it on in production.")


#: What each claim means, for the tables of /demo/callback.
CLAIM_LABELS = {
    "iss": "Émetteur du jeton (le fournisseur d'identité)",
    "sub": "Identifiant de la personne, propre à ce site (« pairwise »)",
    "aud": "Destinataire du jeton (l'identifiant client du site)",
    "exp": "Expiration du jeton",
    "iat": "Émission du jeton",
    "auth_time": "Moment de l'authentification",
    "nonce": "Valeur unique liant le jeton à cette connexion",
    "acr": "Niveau d'authentification obtenu",
    "amr": "Méthodes d'authentification utilisées",
    "at_hash": "Empreinte du jeton d'accès",
    "sid": "Identifiant de session",
    "given_name": "Prénom",
    "family_name": "Nom",
    "birthdate": "Date de naissance",
    "gender": "Genre",
    "email": "Adresse e-mail",
    "email_verified": "Adresse e-mail vérifiée",
    "affiliation": "Affiliation (régime, caisse, statut)",
}
TIME_CLAIMS = ("exp", "iat", "auth_time", "nbf")

#: French explanations of the errors a relying party may receive.
ERROR_LABELS = {
    "login_required": "Aucune session compte ameli active : la personne doit se connecter.",
    "access_denied": "La personne a annulé la connexion.",
    "interaction_required": "La connexion demande une action de la personne.",
    "consent_required": "Un consentement est nécessaire.",
    "invalid_request": "La demande envoyée au fournisseur d'identité est incorrecte.",
    "invalid_scope": "Les informations demandées ne sont pas autorisées pour ce site.",
    "server_error": "Le fournisseur d'identité a rencontré une erreur.",
    "temporarily_unavailable": "Le fournisseur d'identité est momentanément indisponible.",
    "invalid_grant": "Le code d'autorisation est invalide, expiré ou déjà utilisé. Recommencez la connexion.",
    "invalid_client": "Le fournisseur d'identité ne reconnaît pas ce site : relancez « idp demo ».",
    "mismatching_state": "Cette réponse ne correspond à aucune connexion en cours (déjà utilisée, ou venue "
                         "d'un autre navigateur). Recommencez la connexion.",
    "iss_mismatch": "La réponse ne vient pas du fournisseur d'identité attendu (paramètre « iss » absent ou "
                    "différent) : elle est refusée.",
    "missing_id_token": "Le fournisseur d'identité n'a pas renvoyé de jeton d'identité.",
    "validation_failed": "Le jeton d'identité n'a pas pu être vérifié.",
    "unreachable": "Le fournisseur d'identité ne répond pas à l'adresse configurée.",
}


def _ready() -> credentials.Credentials | None:
    return credentials.current()


def _error(error: str, description: str | None = None, status: int = 400, **extra):
    return render_template("demo/error.html", error=error, label=ERROR_LABELS.get(error),
                           description=description, **extra), status


def _not_ready():
    return render_template("demo/not_ready.html"), 503


@bp.route("/")
def index():
    creds = _ready()
    logged_out = None
    if creds is not None and request.args.get("state"):
        # Back from the provider's logout: the state must be the one we sent.
        try:
            rp.client(creds).validate_logout_response()
            logged_out = True
        except OAuthError:
            logged_out = False
    own = rp.session()
    return render_template(
        "demo/index.html",
        ready=creds is not None,
        accounts=DEMO_ACCOUNTS,
        password=DEMO_PASSWORD,
        connected_as=own.get("name"),
        logged_out=logged_out,
    )


@bp.route("/login")
def login():
    """Start an authorization request (``?prompt=none`` or ``?prompt=login`` to try them)."""
    creds = _ready()
    if creds is None:
        return _not_ready()
    extra = {}
    prompt = request.args.get("prompt")
    if prompt in ("none", "login"):
        extra["prompt"] = prompt
    try:
        return rp.client(creds).authorize_redirect(creds.redirect_uri, **extra)
    except Exception:  # the provider's metadata could not be read
        log.warning("Demo login: cannot reach the provider's metadata", exc_info=True)
        return _error("unreachable", status=502)


@bp.route("/callback")
def callback():
    creds = _ready()
    if creds is None:
        return _not_ready()
    client = rp.client(creds)
    state = request.args.get("state")
    iss = request.args.get("iss")
    if iss != creds.issuer:
        # RFC 9207: this provider always sends ``iss``; an answer without it, or from another
        # issuer (mix-up attack), is refused before anything else, its state left unused.
        return _error("iss_mismatch", (iss or "")[:300] or None)
    if "error" in request.args:
        known = client.framework.get_state_data(None, state) is not None if state else False
        if state:
            client.framework.clear_state_data(None, state)
        description = (request.args.get("error_description") or "")[:500] or None
        return _error(request.args.get("error", "")[:100], description, known_state=known)
    try:
        token = client.authorize_access_token()
        if "userinfo" not in token:
            raise OAuthError(error="missing_id_token", description="No ID token in the token response.")
        userinfo = client.userinfo(token=token)
    except OAuthError as exc:
        log.info("Demo callback refused: %s", exc.error)
        return _error(exc.error or "oauth_error", exc.description or None)
    except Exception as exc:  # ID token validation, network: show what failed, never a 500
        log.warning("Demo callback failed: %s", type(exc).__name__, exc_info=True)
        return _error("validation_failed", f"{type(exc).__name__}: {exc}"[:500])

    claims = dict(token["userinfo"])
    own = rp.session()
    own["id_token"] = token["id_token"]
    # The names come from UserInfo: the ID token carries the authentication only.
    own["name"] = " ".join(filter(None, (userinfo.get("given_name"), userinfo.get("family_name")))) or claims["sub"]
    return render_template(
        "demo/callback.html",
        claims=_rows(claims),
        userinfo=_rows(dict(userinfo)),
        header=_jwt_header(token["id_token"]),
        id_token=token["id_token"],
        token_type=token.get("token_type"),
        expires_in=token.get("expires_in"),
        scope=token.get("scope"),
        same_sub=claims.get("sub") == userinfo.get("sub"),
    )


@bp.route("/logout")
def logout():
    """RP-initiated logout: forget the person here, then end the provider's session."""
    creds = _ready()
    own = rp.session()
    id_token = own.pop("id_token", None)
    own.pop("name", None)
    if creds is None or not id_token:
        return redirect(url_for("demo.index"))
    return rp.client(creds).logout_redirect(
        post_logout_redirect_uri=creds.post_logout_redirect_uri, id_token_hint=id_token
    )


# --- mailbox --------------------------------------------------------------------------

def _console_transport() -> bool:
    return current_app.config["IDP_MAIL_URL"].lower().startswith("console:")


@bp.route("/mailbox")
def mailbox_index():
    return render_template("demo/mailbox.html", mails=mailbox.list_mails(), console=_console_transport())


@bp.route("/mailbox/<name>")
def mailbox_mail(name: str):
    msg = mailbox.load(name)
    if msg is None:
        abort(404)
    return render_template(
        "demo/mail.html",
        name=name,
        mail=mailbox.summary(name, msg),
        sender=str(msg["From"] or ""),
        text=mailbox.part(msg, "plain"),
        has_html=mailbox.part(msg, "html") is not None,
    )


@bp.route("/mailbox/<name>/html")
def mailbox_mail_html(name: str):
    """The HTML part alone, for the sandboxed frame of the mail page: no script, no request out."""
    msg = mailbox.load(name)
    html = mailbox.part(msg, "html") if msg is not None else None
    if html is None:
        abort(404)
    response = current_app.response_class(html, mimetype="text/html")
    # Set before security_headers.apply, which only fills in missing headers.
    response.headers["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


# --- helpers ----------------------------------------------------------------------------

def _rows(claims: dict) -> list[dict]:
    rows = []
    for name, value in claims.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)
        when = None
        if name in TIME_CLAIMS and isinstance(value, int):
            when = datetime.fromtimestamp(value, timezone.utc).astimezone(mailbox.PARIS).strftime("%d/%m/%Y %H:%M:%S")
        rows.append({"name": name, "label": CLAIM_LABELS.get(name), "value": shown, "when": when,
                     "multiline": "\n" in shown})
    return rows


def _jwt_header(token: str) -> dict:
    try:
        segment = token.split(".", 1)[0]
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError):
        return {}
