"""The pages of the security space (routes on :data:`idp.account.bp`).

Post/Redirect/Get throughout: every POST answers 303 to a GET page. The CSRF token of
every form is checked before any view runs (Flask-WTF's CSRFProtect, :mod:`idp.errors`
answers a missing or stale one with its « Formulaire expiré » page, nothing done). What the POST
decided (a notice, the errors of a form, the value to show again, never a password)
waits for that GET in the signed session cookie (:func:`_tell`, :func:`_told`).
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm

from .. import audit, crypto, limits, sessions
from ..extensions import db
from ..mail import MailError
from ..messages import msg
from ..mfa import devices, recovery_codes
from ..recovery import links, password_policy
from . import activity, bp, email_change, everywhere, password
from .forms import ActionForm, EmailChangeForm, PasswordChangeForm
from .guard import fresh_login_required, is_fresh, person_session, session_required

_OUTCOME = "idp_account_outcome"
#: The largest row id a database integer holds: a bigger number in a URL names no browser.
_MAX_ID = 2**31 - 1


def _tell(page: str, *, notice: str | None = None, error: str | None = None, errors: dict | None = None,
          values: dict | None = None, **facts):
    """Keep what the POST decided for the GET of ``page``, and send the browser there (303)."""
    session[_OUTCOME] = {"page": page, "notice": notice, "error": error, "errors": errors or {},
                         "values": values or {}, "facts": {k: v for k, v in facts.items() if v is not None}}
    return redirect(url_for(page), code=303)


def _told(page: str) -> dict:
    """What the last POST left for this page (once), or nothing."""
    outcome = session.get(_OUTCOME)
    if not outcome or outcome.get("page") != page:
        return {"notice": None, "error": None, "errors": {}, "values": {}, "facts": {}}
    session.pop(_OUTCOME)
    if "until" in outcome["facts"]:
        outcome["facts"]["until"] = datetime.fromisoformat(outcome["facts"]["until"])
    return outcome


def _with_errors(form: FlaskForm, outcome: dict) -> FlaskForm:
    for name, text in outcome["errors"].items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [text]
    for name, value in outcome["values"].items():
        getattr(form, name).data = value
    return form


def _errors_of(form: FlaskForm) -> dict:
    return {name: errors[0] for name, errors in form.errors.items() if errors and name != "csrf_token"}


def _page(template: str, page: str, **context):
    row = person_session()
    outcome = _told(page)
    sessions.touch(row)  # the space in use keeps the session alive (idle lifetime)
    return render_template(template, person=row.user, auth=row, fresh=is_fresh(row), outcome=outcome,
                           action=ActionForm(), **context)


# --- Overview and « Se déconnecter de tous les appareils » ---------------------------------------

@bp.route("")
@session_required
def index():
    user = person_session().user
    return _page("account/index.html", "account.index", app_active=user.has_app,
                 codes_left=recovery_codes.remaining(user) if user.has_app else 0)


@bp.route("/deconnexion-partout", methods=["POST"])
@fresh_login_required(back="account.index")
def logout_everywhere():
    row = person_session()
    ended = everywhere.end_all(row.user_id, by="person")
    db.session.commit()
    ended.announcement.send()
    g.idp_browser_session = None
    g.idp_session_cookie = ""  # this browser's cookie goes too
    return redirect(url_for(".logged_out"), code=303)


@bp.route("/deconnecte")
def logged_out():
    return render_template("account/logged_out.html")


@bp.route("/connexion-annulee")
def cancelled():
    """The security space's own login was given up (« Annuler »): no partner site to go back to."""
    return render_template("account/cancelled.html")


# --- Trusted browsers ------------------------------------------------------------------------------

@bp.route("/navigateurs")
@session_required
def trusted_browsers():
    row = person_session()
    here = devices.this_browser(row.user_id)
    listed = [{"id": d.id, "label": devices.describe(d.label), "first": d.created_at,
               "last": d.last_used_at or d.created_at, "this": here is not None and d.id == here.id}
              for d in devices.live(row.user_id)]
    return _page("account/trusted_browsers.html", "account.trusted_browsers", browsers=listed)


@bp.route("/navigateurs/<int:device_id>/retirer", methods=["POST"])
@fresh_login_required(back="account.trusted_browsers")
def revoke_browser(device_id: int):
    user_id = person_session().user_id
    # Not theirs, already revoked, or no such number (beyond a database integer): nothing changes.
    if device_id > _MAX_ID or not devices.revoke(user_id, device_id):
        db.session.rollback()
        return _tell("account.trusted_browsers", error="browser_unknown")
    audit.record("trusted_device_revoked", user_id=user_id, detail={"count": 1, "reason": "account",
                                                                    "device": device_id})
    db.session.commit()
    return _tell("account.trusted_browsers", notice="browser_revoked")


@bp.route("/navigateurs/retirer-tous", methods=["POST"])
@fresh_login_required(back="account.trusted_browsers")
def revoke_all_browsers():
    user_id = person_session().user_id
    count = devices.revoke_all(user_id)
    if count:
        audit.record("trusted_device_revoked", user_id=user_id, detail={"count": count, "reason": "account"})
    db.session.commit()
    return _tell("account.trusted_browsers", notice="browsers_revoked", count=count)


# --- Recent activity -------------------------------------------------------------------------------

@bp.route("/activite")
@session_required
def recent_activity():
    return _page("account/activity.html", "account.recent_activity",
                 entries=activity.recent(person_session().user_id),
                 days=current_app.config["IDP_ACCOUNT_ACTIVITY_DAYS"])


# --- Password --------------------------------------------------------------------------------------

@bp.route("/mot-de-passe", methods=["GET"])
@fresh_login_required()
def change_password_page():
    outcome = _told("account.change_password_page")
    form = _with_errors(PasswordChangeForm(formdata=None), outcome)
    cfg = current_app.config
    row = person_session()
    sessions.touch(row)
    return render_template("account/password.html", form=form, outcome=outcome, person=row.user,
                           rules=password_policy.checklist(outcome["facts"].get("broken")), specials=password_policy.SPECIALS,
                           min_length=cfg["IDP_PASSWORD_MIN_LENGTH"], max_length=cfg["IDP_PASSWORD_MAX_LENGTH"],
                           check_url=url_for(".check_password"))


@bp.route("/mot-de-passe", methods=["POST"])
@fresh_login_required(back="account.change_password_page")
def change_password():
    page = "account.change_password_page"
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return _tell(page, errors=_errors_of(form))
    row = person_session()
    user = row.user
    new = form.password.data
    broken = password_policy.broken_for(user, new)
    if broken:
        texts = [r["text"] for r in password_policy.checklist(broken) if r["state"] == "unmet"]
        error = msg("password_rules_broken") + " " + " ; ".join(texts) + "."
        bad = password_policy.disallowed_characters(new)
        if bad:
            shown = ", ".join("espace" if c == " " else f"« {c} »" for c in bad[:10])
            error += " " + msg("password_disallowed_characters").format(chars=shown)
        return _tell(page, errors={"password": error}, broken=broken)
    if not crypto.equals(new, form.confirm.data):
        return _tell(page, errors={"confirm": msg("password_confirm_mismatch")})
    checked = password.check_current(user, form.current.data)
    if checked.locked_until is not None:  # case 6: the NIR is locked, as at the login
        return _tell(page, error="case6", until=checked.locked_until.isoformat())
    if not checked.ok:  # case 4
        return _tell(page, errors={"current": msg("current_password_wrong")})
    password_hash = crypto.hash_password(new)
    changed_at, announcement = password.change(user, password_hash, keep=row)
    db.session.commit()
    announcement.send()
    if user.email:
        links.send_later(links.mail_job("password_changed_in_space", user.email, given_name=user.given_name,
                                        family_name=user.family_name, changed_at=changed_at))
    return _tell("account.index", notice="password_changed")


@bp.route("/mot-de-passe/verifier", methods=["POST"])
@session_required
def check_password():
    """The page's live check (JavaScript): the rules that need the NIR and birth date, kept on the server."""
    typed = request.form.get("password", "")
    if len(typed) > 200:
        return jsonify(error="too_long"), 400
    return jsonify(broken=password_policy.broken_for(person_session().user, typed))


# --- E-mail address --------------------------------------------------------------------------------

@bp.route("/adresse-mail", methods=["GET"])
@fresh_login_required()
def change_email_page():
    outcome = _told("account.change_email_page")
    form = _with_errors(EmailChangeForm(formdata=None), outcome)
    row = person_session()
    sessions.touch(row)
    return render_template("account/email.html", form=form, outcome=outcome, person=row.user,
                           link_hours=max(1, current_app.config["IDP_ACCOUNT_EMAIL_CHANGE_LIFETIME"] // 3600))


@bp.route("/adresse-mail", methods=["POST"])
@fresh_login_required(back="account.change_email_page")
def change_email():
    page = "account.change_email_page"
    form = EmailChangeForm()
    if not form.validate_on_submit():
        return _tell(page, errors=_errors_of(form), values={"email": (form.email.data or "")[:254]})
    user = person_session().user
    new_email = form.email.data.strip()
    if user.email and new_email.casefold() == user.email.casefold():
        return _tell(page, errors={"email": msg("new_email_same")}, values={"email": new_email})
    quota, key = email_change.quota(), email_change.quota_key(user)
    # Reserved before the mail: however many requests race on however many workers, no more links than the quota.
    attempt = limits.reserve(quota, key, commit=False)
    if not attempt.allowed:
        if attempt.set_lock:
            audit.record("quota_blocked", user_id=user.id,
                         detail={"kind": "email_change", "until": attempt.locked_until.isoformat() + "Z"})
        db.session.commit()
        return _tell(page, error="email_quota", values={"email": new_email}, until=attempt.locked_until.isoformat())
    limits.commit_keeping_loaded()
    try:
        email_change.request_change(user, new_email)
    except MailError:
        db.session.rollback()
        limits.give_back(quota, key)
        db.session.commit()
        current_app.logger.warning("E-mail change link could not be sent (user %s)", user.id)
        return _tell(page, error="mail_failed", values={"email": new_email})
    return _tell(page, notice="email_link_sent", address=new_email)


@bp.route("/adresse-mail/valider", methods=["GET"])
def confirm_email_page():
    """The link of the mail, ``…/adresse-mail/valider#<token>``: the token stays in the fragment (no log
    holds it); the page's script copies it into the form, the person's click posts it."""
    return render_template("account/email_confirm.html", state="confirm", form=FlaskForm())


@bp.route("/adresse-mail/valider", methods=["POST"])
def confirm_email():
    if not FlaskForm().validate_on_submit():
        return redirect(url_for(".email_link_invalid"), code=303)
    user = email_change.confirm(crypto.link_token(request.form))
    if user is None:
        return redirect(url_for(".email_link_invalid"), code=303)
    return redirect(url_for(".email_changed"), code=303)


@bp.route("/adresse-mail/validee")
def email_changed():
    return render_template("account/email_confirm.html", state="done")


@bp.route("/adresse-mail/lien-invalide")
def email_link_invalid():
    return render_template("account/email_confirm.html", state="invalid")
