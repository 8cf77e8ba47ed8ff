"""The pages of the forgotten-password journey (seed ameli-forgot-password).

====================================  =======================================================
``/mot-de-passe-oublie``               step 2: NIR, birth date, CAPTCHA, « Recevoir le mail »
``/mot-de-passe-oublie/mail-envoye``   step 3: open your mailbox (also when nothing matched)
``/mot-de-passe-oublie/aide``          « Je n'ai pas reçu le mail »
``/mot-de-passe-oublie/nouveau#<t>``   steps 4-6: the link of the mail, the new password
====================================  =======================================================

No page says whether an account exists: a NIR and birth date that match no
account lead to the page of a sent mail, after the same database work; mails
are sent by a background thread, so their sending time is not seen either. Every
submission of step 2 is counted per NIR typed (case 2), account or not.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select

from .. import audit, crypto, limits, mail, nir
from ..extensions import db
from ..login import flow as login_flows
from ..login import policy
from ..mail import MailError
from ..messages import msg
from ..models import User
from ..timefmt import duration
from . import captcha, links, password_policy
from .forms import IdentityForm, NewPasswordForm
from .policy import reset_mail_quota

bp = Blueprint("recovery", __name__, url_prefix="/mot-de-passe-oublie")


def _login_url() -> str | None:
    """``/connexion`` when this browser has a login in progress (it came from a relying party)."""
    return url_for("login.step") if login_flows.current() is not None else None


# --- Step 2 ---------------------------------------------------------------------------------------

def _identity_page(form: IdentityForm, status: int = 200, notice: str | None = None, focus_captcha: bool = False):
    """The step 2 page, always with a new CAPTCHA series."""
    handle = captcha.issue()
    form.captcha_handle.data = handle
    form.captcha.data = ""
    return render_template(
        "recovery/start.html",
        form=form,
        image_url=url_for(".captcha_image", handle=handle),
        audio_url=url_for(".captcha_audio", handle=handle),
        captcha_minutes=captcha.lifetime_minutes(),
        captcha_length=len(captcha.series_for(handle)),
        image_size=captcha.IMAGE_SIZE,
        notice=notice,
        focus_captcha=focus_captcha,
        login_url=_login_url(),
    ), status


@bp.route("", methods=["GET", "POST"])
def start():
    form = IdentityForm()
    if request.method == "GET":
        return _identity_page(form)
    if request.form.get("action") == "new-captcha":  # « Nouvelle série »: nothing else is checked
        captcha.discard(form.captcha_handle.data)
        return _identity_page(form, notice=msg("captcha_new"), focus_captcha=True)

    outcome = captcha.check(form.captcha_handle.data, form.captcha.data)  # consumed, right or wrong
    valid = form.validate()
    if outcome is not captcha.Check.OK and not form.captcha.errors:
        form.captcha.errors = [msg(outcome.value).format(duration=duration(current_app.config["IDP_CAPTCHA_LIFETIME"]))]
    if not valid or outcome is not captcha.Check.OK:
        return _identity_page(form, status=400, focus_captcha=valid)

    # A mail-server outage is told before anything is counted, account or not (no quota charged).
    try:
        mail.check_transport()
    except MailError as exc:
        current_app.logger.warning("Reset link request refused, mail transport down: %s", exc)
        return render_template("recovery/mail_failed.html", login_url=_login_url()), 503, MailError.headers()

    # The same statements whether the NIR and birth date match an account or not: the
    # reservation in the quota (case 2, counted per NIR typed) and the lookup. The link is
    # written and mailed by a background job, so neither its work nor the mail server's
    # time shows in the answer.
    # The audit row of each outcome is written in the transaction of the quota's statement, so
    # account or not, the same statements again (the reservation, the lookup, one INSERT, COMMIT).
    quota, quota_key = reset_mail_quota(), policy.nir_key(form.nir.data)
    attempt = limits.reserve(quota, quota_key, commit=False)
    if not attempt.allowed:  # case 2, the same for a NIR without an account
        audit.record("password_reset_refused", nir=form.nir.data, case=2, detail={"refused": not attempt.set_lock})
        if attempt.set_lock:
            audit.record("quota_blocked", nir=form.nir.data, case=2,
                         detail={"kind": "reset_mail", "until": attempt.locked_until.isoformat() + "Z"})
        db.session.commit()
        return render_template("recovery/case2_quota.html", until=attempt.locked_until, login_url=_login_url()), 429

    user = db.session.scalar(select(User).where(User.nir == nir.normalize(form.nir.data)))
    matched = user is not None and user.birth_date == form.born
    if matched and not (user.email and user.email_verified):  # case 1
        audit.record("password_reset_refused", user_id=user.id, case=1)
        db.session.commit()
        return render_template("recovery/case1_no_email.html", has_email=bool(user.email),
                               login_url=_login_url()), 403
    # No account, or a birth date that does not match: the person typed is kept by the NIR's hash.
    audit.record("password_reset_requested", user_id=user.id if matched else None,
                 nir=None if matched else form.nir.data, detail={"matched": matched})
    limits.commit_keeping_loaded()  # the person is read by the link's job: not loaded again
    if matched:
        # Started a moment later, once the answer has left: the mail job's work shares no time with it.
        links.send_later(links.issue(user, quota, quota_key), delay=links.JOB_DELAY_SECONDS)
    return redirect(url_for(".mail_sent"), code=303)


@bp.route("/captcha/<handle>/image.png")
def captcha_image(handle: str):
    if not captcha.live(handle):
        abort(404)
    return Response(captcha.image(handle), mimetype="image/png")


@bp.route("/captcha/<handle>/son.wav")
def captcha_audio(handle: str):
    if not captcha.live(handle):
        abort(404)
    response = Response(captcha.audio(handle), mimetype="audio/wav")
    response.headers["Content-Disposition"] = 'inline; filename="caracteres.wav"'
    return response


# --- Step 3 ---------------------------------------------------------------------------------------

@bp.route("/mail-envoye")
def mail_sent():
    return render_template("recovery/mail_sent.html", link_minutes=links.lifetime_minutes())


@bp.route("/aide")
def help_page():
    """« Je n'ai pas reçu le mail » (the seed's checklist)."""
    return render_template("recovery/help.html", link_minutes=links.lifetime_minutes())


# --- Steps 4 to 6 ---------------------------------------------------------------------------------

def _rules(broken: list[str] | None = None) -> list[dict]:
    cfg = current_app.config
    texts = {key: msg(key).format(min=cfg["IDP_PASSWORD_MIN_LENGTH"], max=cfg["IDP_PASSWORD_MAX_LENGTH"])
             for key in password_policy.RULES}
    def state(key: str) -> str | None:
        return None if broken is None else ("unmet" if key in broken else "met")

    return [{"key": key, "text": texts[key], "state": state(key)} for key in password_policy.RULES]


def _broken(user: User, password: str) -> list[str]:
    cfg = current_app.config
    return password_policy.broken_rules(password, user.nir, user.birth_date,
                                        cfg["IDP_PASSWORD_MIN_LENGTH"], cfg["IDP_PASSWORD_MAX_LENGTH"])


def _invalid_link():
    return render_template("recovery/link_invalid.html", link_minutes=links.lifetime_minutes(),
                           login_url=_login_url()), 400


def _password_page(form: NewPasswordForm, token: str, broken: list[str] | None = None, status: int = 200):
    return render_template(
        "recovery/new_password.html",
        form=form,
        token=token,
        rules=_rules(broken),
        specials=password_policy.SPECIALS,
        min_length=current_app.config["IDP_PASSWORD_MIN_LENGTH"],
        max_length=current_app.config["IDP_PASSWORD_MAX_LENGTH"],
        check_url=url_for(".check_password"),
    ), status


@bp.route("/nouveau", methods=["GET"])
def open_link():
    """Step 4: the link of the mail, ``/mot-de-passe-oublie/nouveau#<token>``.

    The token is in the fragment, which the browser never sends: this page's script
    posts it (``action=open``), so it appears in no access log. Opening the link
    (a mail scanner does) consumes nothing.
    """
    return render_template("recovery/link_open.html", form=FlaskForm())


@bp.route("/nouveau", methods=["POST"])
def new_password():
    """Steps 5 and 6: the page of the new password (``action=open``), then the password itself."""
    token = crypto.link_token(request.form)
    reset = links.find_live(token)
    if reset is None:
        return _invalid_link()
    user = db.session.get(User, reset.user_id)
    if request.form.get("action") == "open":  # the link's page opened: consumes nothing
        return _password_page(NewPasswordForm(formdata=None), token)
    form = NewPasswordForm()
    if not form.validate():
        return _password_page(form, token, status=400)
    password = form.password.data
    broken = _broken(user, password)
    if broken:
        error = (msg("password_rules_broken") + " "
                 + " ; ".join(r["text"] for r in _rules(broken) if r["state"] == "unmet") + ".")
        bad = password_policy.disallowed_characters(password)
        if bad:
            shown = ", ".join("espace" if c == " " else f"« {c} »" for c in bad[:10])
            error += " " + msg("password_disallowed_characters").format(chars=shown)
        form.password.errors = [error]
        return _password_page(form, token, broken=broken, status=400)
    if not crypto.equals(password, form.confirm.data):
        form.confirm.errors = [msg("password_confirm_mismatch")]
        return _password_page(form, token, status=400)

    password_hash = crypto.hash_password(password)  # before the transaction: Argon2 takes time
    if not links.consume(reset):  # a double submit, or a newer link sent meanwhile
        db.session.rollback()
        return _invalid_link()
    changed_at, announcement = links.change_password(user, password_hash)
    db.session.commit()
    announcement.send()
    job = links.changed_mail(user, changed_at)
    if job is not None:
        links.send_later(job)
    return render_template("recovery/done.html", login_url=_login_url())


@bp.route("/nouveau/verifier", methods=["POST"])
def check_password():
    """The live check of the page (JavaScript): the rules the typed password breaks.

    The NIR and the birth date stay on the server: the page only learns whether
    the password contains them.
    """
    reset = links.find_live(request.form.get("token", ""))
    if reset is None:
        return jsonify(error="link"), 404
    password = request.form.get("password", "")
    if len(password) > 200:
        return jsonify(error="too_long"), 400
    return jsonify(broken=_broken(db.session.get(User, reset.user_id), password))
