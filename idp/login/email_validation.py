"""Case 1 of the login journey: the email address is missing or not validated.

The person is invited to validate it through the validation mail, which can be
sent again from the case 1 page (counted in the same quota as security codes),
or to contact their caisse. The link is random, single use, time-limited and
stored as a keyed hash. Opening it shows a button: link scanners of mail
services, which open links, do not validate anything by themselves.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import delete, select, update

from .. import audit, crypto, limits
from ..extensions import db
from ..mail import MailError, render_mail, send_mail
from ..models import EmailValidation, LoginFlow, User, utcnow
from ..messages import msg
from . import notice, policy

PURPOSE = "email-validation"

bp = Blueprint("email_validation", __name__, url_prefix="/compte")


def send_validation_mail(user: User) -> None:
    """Send a new validation link; once it has left, the links sent before stop working (the mail says so).

    Raises :class:`~idp.mail.MailError` when the mail server refuses it: the older
    link then stays valid.
    """
    token = crypto.random_token(32)
    expires_at = utcnow() + timedelta(seconds=current_app.config["IDP_EMAIL_VALIDATION_LIFETIME"])
    link = current_app.config["IDP_ISSUER"] + url_for("email_validation.validate") + "#" + token
    subject, text, html = render_mail("email_validation", user=user, link=link, expires_at=expires_at)
    send_mail(user.email, subject, text, html)
    db.session.execute(
        delete(EmailValidation).where(EmailValidation.user_id == user.id, EmailValidation.used_at.is_(None))
    )
    db.session.add(
        EmailValidation(user_id=user.id, token_hash=crypto.keyed_hash(PURPOSE, token), email=user.email,
                        expires_at=expires_at)
    )
    db.session.commit()


def case1_page(flow: LoginFlow, step: str):
    """The case 1 page, and its « renvoyer le mail de validation » button.

    The resend is reserved in the code quota before the mail goes; a mail that could
    not be sent is given back (503, the older link still valid). The button's answer
    is kept as the flow's notice and shown by the GET that follows (Post/Redirect/Get).
    """
    user = flow.user
    form = FlaskForm()
    if request.method == "POST":
        action = request.form.get("action")
        if action == "use-app" and user.has_app:
            # Issue 12: the app needs no mailbox; EmailCheck lets a flow that chose it go on.
            if not form.validate_on_submit():
                return notice.keep(flow, step, 403, error="csrf")
            flow.second_factor = "app"
            return redirect(url_for("login.step"), code=303)
        if action != "resend-validation" or not user.email:
            return notice.see_current_step()
        if not form.validate_on_submit():
            return notice.keep(flow, step, 403, error="csrf")
        quota, key = policy.code_quota(), policy.user_key(user.id)
        attempt = limits.reserve(quota, key)
        if not attempt.allowed:
            return notice.keep(flow, step, 429, until=attempt.locked_until, blocked=True)
        try:
            send_validation_mail(user)
        except MailError:
            current_app.logger.warning("Email validation mail could not be sent (user %s)", user.id)
            limits.give_back(quota, key)
            db.session.commit()
            return notice.keep(flow, step, 503, failed=True)
        return notice.keep(flow, step, 403, sent=True)
    kept = notice.current(flow, step) or {"status": 403, "flags": {}, "error": None}
    flags = kept["flags"]
    headers = MailError.headers() if flags.get("failed") else {}
    blocked = notice.until(kept) if flags.get("blocked") else None
    if blocked is not None:
        headers = {"Retry-After": str(max(1, int((blocked - utcnow()).total_seconds())))}
    return render_template("login/case1_no_validated_email.html", form=form, user=user, sent=flags.get("sent"),
                           blocked=blocked, failed=flags.get("failed"),
                           error=msg(kept["error"]) if kept["error"] else None), kept["status"], headers


@bp.route("/valider-email", methods=["GET", "POST"])
def validate():
    """The link of the validation mail, ``/compte/valider-email#<token>``.

    The token is in the fragment, which browsers never send: the page's script
    copies it into the form, and the person's click posts it. So no access log
    holds a live link, and a mail scanner that opens the link validates nothing.
    """
    form = FlaskForm()
    if request.method == "GET":
        return render_template("account/email_validation.html", state="confirm", form=form)
    token = crypto.link_token(request.form)
    found = None
    if 0 < len(token) < 100:
        found = db.session.scalar(
            select(EmailValidation).where(EmailValidation.token_hash == crypto.keyed_hash(PURPOSE, token))
        )
    if found is None or found.used_at is not None or utcnow() >= found.expires_at:
        return render_template("account/email_validation.html", state="invalid"), 400
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
    audit.record("email_validated", user_id=user.id)
    db.session.commit()
    return render_template("account/email_validation.html", state="done")
