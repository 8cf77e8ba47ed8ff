"""Change the e-mail address: nothing changes until the new address is proven.

The request mails a validation link to the NEW address (random 256-bit token in the
link's fragment, its keyed hash stored in ``email_validations`` with the new
address, ``IDP_ACCOUNT_EMAIL_CHANGE_LIFETIME``, single use by one conditional
UPDATE, only the newest link of the person works) and tells the OLD address, with
the date and time. Using the link sets the new address, validated. The machinery
is the case 1 validation link's (:mod:`idp.login.email_validation`), under a keyed
hash purpose of its own, so neither link opens the other's page.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, url_for
from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import aliased

from .. import audit, crypto, limits
from ..extensions import db
from ..mail import render_mail, send_mail
from ..models import EmailValidation, User, utcnow
from ..recovery import links

PURPOSE = "email-change"


def quota() -> limits.Policy:
    """Links asked for per person and window; the one past the quota is refused and starts the block."""
    cfg = current_app.config
    return limits.Policy("email-change", cfg["IDP_ACCOUNT_EMAIL_CHANGE_QUOTA"] + 1,
                         cfg["IDP_ACCOUNT_EMAIL_CHANGE_QUOTA_BLOCK"], cfg["IDP_ACCOUNT_EMAIL_CHANGE_QUOTA_WINDOW"],
                         locking_event_allowed=False)


def quota_key(user: User) -> str:
    return f"user:{user.id}"
MAX_TOKEN_LENGTH = 100


def request_change(user: User, new_email: str) -> None:
    """Mail the link to ``new_email`` (raises :class:`~idp.mail.MailError`: nothing kept), then tell the old one."""
    token = crypto.random_token(32)
    now = utcnow()
    expires_at = now + timedelta(seconds=current_app.config["IDP_ACCOUNT_EMAIL_CHANGE_LIFETIME"])
    link = current_app.config["IDP_ISSUER"] + url_for("account.confirm_email") + "#" + token
    send_mail(new_email, *render_mail("email_change_link", given_name=user.given_name, family_name=user.family_name,
                                      link=link, expires_at=expires_at))
    db.session.execute(delete(EmailValidation).where(EmailValidation.user_id == user.id,
                                                     EmailValidation.used_at.is_(None)))
    db.session.add(EmailValidation(user_id=user.id, token_hash=crypto.keyed_hash(PURPOSE, token), email=new_email,
                                   created_at=now, expires_at=expires_at))
    audit.record("email_change_requested", user_id=user.id)
    db.session.commit()
    if user.email:
        links.send_later(links.mail_job("email_change_notice", user.email, given_name=user.given_name,
                                        family_name=user.family_name, requested_at=now,
                                        new_email=mask(new_email)))


def mask(email: str) -> str:
    """``j***@exemple.fr``: the old address learns a change was asked, not the whole new address."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def confirm(token: str) -> User | None:
    """Use the link: the person whose address changed, or None (unknown, used, expired, superseded)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    found = db.session.scalar(select(EmailValidation)
                              .where(EmailValidation.token_hash == crypto.keyed_hash(PURPOSE, token)))
    now = utcnow()
    if found is None or found.used_at is not None or now >= found.expires_at:
        return None
    newer = aliased(EmailValidation)
    consumed = db.session.execute(
        update(EmailValidation)
        .where(EmailValidation.id == found.id, EmailValidation.used_at.is_(None), EmailValidation.expires_at > now,
               ~exists().where(newer.user_id == EmailValidation.user_id, newer.id > EmailValidation.id))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    user = db.session.get(User, found.user_id)
    if consumed.rowcount != 1 or user is None:
        db.session.rollback()
        return None
    user.email = found.email
    user.email_verified = True
    audit.record("email_changed", user_id=user.id)
    db.session.commit()
    return user
