"""What ``idp demo`` sets up: the demo relying party and one person per case worth trying.

Idempotent. The client keeps its ``client_id``; its secret is replaced only when
the credentials file does not match the database. People are found by NIR: an
existing one is left alone (its password may have been changed while trying
things out) unless ``reset`` asks to restore every field and the shared password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from .. import crypto, nir
from ..mfa import devices
from ..extensions import db
from ..models import Client, User, utcnow
from . import credentials

#: The one password of every demo account (demo data, printed by ``idp demo`` and shown on /demo).
DEMO_PASSWORD = "Demo-ameli-2025"


@dataclass(frozen=True)
class DemoAccount:
    first13: str  # the NIR without its key; the key is computed (idp.nir.with_key)
    situation: str  # French: shown on /demo and printed by ``idp demo``
    shows: str  # French: which seed steps and cases this person lets one try (same places)
    given_name: str
    family_name: str
    gender: str
    birth_date: date
    email: str
    email_verified: bool
    regime_code: str
    caisse: str | None
    affiliation: str

    @property
    def nir(self) -> str:
        return nir.with_key(self.first13)

    @property
    def birth_date_display(self) -> str:
        """``12/05/1985``: how the forgotten-password form asks for it (step 1)."""
        return self.birth_date.strftime("%d/%m/%Y")

    @property
    def nir_display(self) -> str:
        """As printed on a carte Vitale: ``2 85 05 75 056 123 45``."""
        n = self.nir
        return " ".join((n[0], n[1:3], n[3:5], n[5:7], n[7:10], n[10:13], n[13:]))

    def fields(self) -> dict:
        return {
            "given_name": self.given_name,
            "family_name": self.family_name,
            "gender": self.gender,
            "birth_date": self.birth_date,
            "email": self.email,
            "email_verified": self.email_verified,
            "regime_code": self.regime_code,
            "caisse": self.caisse,
            "affiliation": self.affiliation,
        }


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("2850575056123", "Assurée du régime général, adresse e-mail vérifiée : le parcours complet",
                "Étapes 0, 1 et 3, appareil de confiance ; cas 2 (code expiré), 3 (trop de codes), 4 à 6 (erreurs et "
                "blocages) ; mot de passe oublié, étapes 1 à 6 et cas 2 (trop de demandes)",
                "Jeanne", "Martin", "female", date(1985, 5, 12), "jeanne.martin@demo.invalid", True,
                "01", "CPAM de Paris", "affiliated"),
    DemoAccount("1901169123045", "Adresse e-mail pas encore vérifiée",
                "Cas 1 : mail de validation de l'adresse ; mot de passe oublié, cas 1 (pas d'adresse validée)",
                "Paul", "Durand", "male", date(1990, 11, 3), "paul.durand@demo.invalid", False,
                "01", "CPAM du Rhône", "affiliated"),
    DemoAccount("2980313055210", "Affiliation en cours (« pending »)",
                "Cas 8 : connexion impossible, le rattachement est en cours",
                "Amina", "Benali", "female", date(1998, 3, 27), "amina.benali@demo.invalid", True,
                "01", "CPAM des Bouches-du-Rhône", "pending"),
    DemoAccount("1020733063078", "Sans affiliation (« none »)",
                "Cas 7 : connexion impossible, pas d'affiliation",
                "Lucas", "Petit", "male", date(2002, 7, 19), "lucas.petit@demo.invalid", True,
                "01", None, "none"),
    DemoAccount("2760929019034", "Assurée de la MSA (régime agricole, code 02)",
                "Le régime (code 02) et la caisse transmis au site partenaire",
                "Marie", "Le Gall", "female", date(1976, 9, 8), "marie.legall@demo.invalid", True,
                "02", "MSA d'Armorique", "affiliated"),
    DemoAccount("188042A004012", "Né en Corse : NIR avec « 2A » (saisie avec espaces acceptée)",
                "Le NIR corse (2A) saisi avec ou sans espaces, et sa clé",
                "Antoine", "Santoni", "male", date(1988, 4, 14), "antoine.santoni@demo.invalid", True,
                "01", "CPAM de la Corse-du-Sud", "affiliated"),
)


def ensure_client(issuer: str) -> tuple[credentials.Credentials, str]:
    """Register (or update) the demo relying party and write its credentials file.

    Returns the credentials and what happened: ``created``, ``updated`` or
    ``secret-rotated``.
    """
    stored = credentials.read()
    client = None
    if stored is not None:
        client = db.session.scalar(select(Client).where(Client.client_id == stored.client_id))
    outcome = "updated"
    if client is None:
        client = Client(client_id="demo-" + crypto.random_token(12))
        db.session.add(client)
        outcome = "created"
    secret = stored.client_secret if stored is not None else None
    if not secret or not client.check_client_secret(secret):
        secret = crypto.random_token(32)
        client.set_secret(secret)
        if outcome == "updated":
            outcome = "secret-rotated"
    client.name = credentials.CLIENT_NAME
    client.redirect_uris = [credentials.redirect_uri(issuer)]
    client.post_logout_redirect_uris = [credentials.post_logout_redirect_uri(issuer)]
    client.scope = credentials.SCOPE
    client.grant_types = ["authorization_code"]
    client.id_token_signed_response_alg = None
    db.session.commit()
    creds = credentials.Credentials(issuer, client.client_id, secret)
    credentials.write(creds)
    return creds, outcome


def ensure_users(reset: bool = False) -> list[tuple[DemoAccount, str]]:
    """Create the demo people; returns each with ``created``, ``kept`` or ``reset``."""
    results = []
    for account in DEMO_ACCOUNTS:
        user = db.session.scalar(select(User).where(User.nir == account.nir))
        if user is not None and not reset:
            results.append((account, "kept"))
            continue
        if user is None:
            user = User(nir=account.nir)
            db.session.add(user)
            outcome = "created"
        else:
            outcome = "reset"
            devices.revoke_all(user.id)  # a new password forgets the trusted browsers
        for name, value in account.fields().items():
            setattr(user, name, value)
        user.password_hash = crypto.hash_password(DEMO_PASSWORD)
        user.password_changed_at = utcnow()
        results.append((account, outcome))
    db.session.commit()
    return results
