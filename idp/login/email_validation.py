"""Case 1 of the login journey: the email address is missing or not validated.

The person is invited to validate it through the validation mail, which can be
sent again from the case 1 page (counted in the same quota as security codes),
or to contact their caisse. The link is random, single use, time-limited and
stored as a keyed hash. Opening it shows a button: link scanners of mail
services, which open links, do not validate anything by themselves.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import delete, select, update

from .. import crypto, limits
from ..extensions import db
from ..mail import MailError, render_mail, send_mail
from ..models import EmailValidation, LoginFlow, User, utcnow
from . import policy

PURPOSE = "email-validation"

bp = Blueprint("email_validation", __name__, url_prefix="/compte")


def send_validation_mail(user: User) -> None:
    """Send a new validation link; the links sent before stop working (the mail says so)."""
    token = crypto.random_token(32)
    expires_at = utcnow() + timedelta(seconds=current_app.config["IDP_EMAIL_VALIDATION_LIFETIME"])
    db.session.execute(
        delete(EmailValidation).where(EmailValidation.user_id == user.id, EmailValidation.used_at.is_(None))
    )
    db.session.add(
        EmailValidation(user_id=user.id, token_hash=crypto.keyed_hash(PURPOSE, token), email=user.email,
                        expires_at=expires_at)
    )
    db.session.commit()
    link = current_app.config["IDP_ISSUER"] + url_for("email_validation.validate", token=token)
    subject, text, html = render_mail("email_validation", user=user, link=link, expires_at=expires_at)
    send_mail(user.email, subject, text, html)


def case1_page(flow: LoginFlow):
    """The case 1 page, and its « renvoyer le mail de validation » button."""
    user = flow.user
    form = FlaskForm()
    sent = blocked = failed = None
    if request.method == "POST" and request.form.get("action") == "resend-validation" and user.email:
        if form.validate_on_submit():
            blocked = limits.hit(policy.code_quota(), policy.user_key(user.id))
            if blocked is None:
                try:
                    send_validation_mail(user)
                    sent = True
                except MailError:
                    failed = True
    status = 429 if blocked else 403
    return render_template("login/case1_no_validated_email.html", form=form, user=user, sent=sent,
                           blocked=blocked, failed=failed), status


@bp.route("/valider-email/<token>", methods=["GET", "POST"])
def validate(token: str):
    form = FlaskForm()
    found = None
    if len(token) < 100:
        found = db.session.scalar(
            select(EmailValidation).where(EmailValidation.token_hash == crypto.keyed_hash(PURPOSE, token))
        )
    if found is None or found.used_at is not None or utcnow() >= found.expires_at:
        return render_template("account/email_validation.html", state="invalid"), 400
    if request.method == "GET" or not form.validate_on_submit():
        return render_template("account/email_validation.html", state="confirm", form=form)
    consumed = db.session.execute(
        update(EmailValidation)
        .where(EmailValidation.id == found.id, EmailValidation.used_at.is_(None))
        .values(used_at=utcnow())
    )
    user = db.session.get(User, found.user_id)
    if consumed.rowcount != 1 or user is None or user.email != found.email:
        db.session.rollback()
        return render_template("account/email_validation.html", state="invalid"), 400
    user.email_verified = True
    db.session.commit()
    return render_template("account/email_validation.html", state="done")
