"""The pages of the forgotten-password journey (seed ameli-forgot-password).

==============================================  ===========================================================
``/mot-de-passe-oublie``                         step 2: NIR, birth date, CAPTCHA, « Recevoir le mail »
``/mot-de-passe-oublie/mail-envoye``             step 3: open your mailbox (also when nothing matched)
``/mot-de-passe-oublie/envoi-impossible``        step 3bis, case 1: no validated email address
``/mot-de-passe-oublie/demandes-bloquees``       case 2: too many mails asked for
``/mot-de-passe-oublie/service-indisponible``    the mail server does not answer
``/mot-de-passe-oublie/aide``                    « Je n'ai pas reçu le mail »
``/mot-de-passe-oublie/nouveau#<t>``             step 4: the link of the mail (its script posts the token)
``/mot-de-passe-oublie/nouveau/mot-de-passe``    step 5: the new password
``/mot-de-passe-oublie/nouveau/enregistre``      step 6: the new password is saved
``/mot-de-passe-oublie/lien-invalide``           the link is expired, used or replaced
==============================================  ===========================================================

Every POST answers 303 to one of these GETs (Post/Redirect/Get): back and reload
never post a form again. What the GET shows (errors, outcome, the link opened)
is kept in the signed session by :mod:`.state`, never in a URL.

No page says whether an account exists: a NIR and birth date that match no
account lead to the page of a sent mail, after the same database work; mails
are sent by a background thread, so their sending time is not seen either. Every
submission of step 2 is counted per NIR typed (case 2), account or not.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import TooManyRequests
from sqlalchemy import select

from .. import audit, crypto, limits, mail, nir
from ..extensions import db
from ..login import flow as login_flows
from ..login import policy
from ..errors import http_error_response
from ..mail import MailError
from ..messages import msg
from ..models import User
from ..models.recovery import PasswordReset
from ..timefmt import duration
from . import captcha, links, password_policy, state
from .forms import IdentityForm, NewPasswordForm
from .policy import reset_mail_quota

bp = Blueprint("recovery", __name__, url_prefix="/mot-de-passe-oublie")


def _login_url() -> str | None:
    """``/connexion`` when this browser has a login in progress (it came from a relying party)."""
    return url_for("login.step") if login_flows.current() is not None else None


@bp.context_processor
def _way_back() -> dict:
    """Every page of the journey offers a way back (templates/recovery/_back.html): to the login in
    progress and its partner site, or, without one, to the partner site's button."""
    return {"login_url": _login_url()}


# --- Step 2 ---------------------------------------------------------------------------------------

def _identity_page(form: IdentityForm, status: int = 200, notice: str | None = None, focus_captcha: bool = False,
                   form_error: str | None = None):
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
        form_error=form_error,
        has_error=bool(form.errors or form_error),
    ), status


def _field_errors(form) -> dict[str, str]:
    return {f.name: str(f.errors[0]) for f in form if f.errors and f.type != "CSRFTokenField"}


def _back_to_start(form: IdentityForm, errors: dict[str, str], notice: str | None = None,
                   focus_captcha: bool = False):
    """PRG: what was posted, with its errors, for the GET of step 2 (:mod:`.state`)."""
    state.keep_identity(form.nir.data, form.birth_date.data, errors, notice=notice, focus_captcha=focus_captcha)
    return redirect(url_for(".start"), code=303)


def _to(page: str, **details):
    state.set_outcome(page, **details)
    return redirect(url_for(f".{page}"), code=303)


@bp.route("", methods=["GET", "POST"])
def start():
    if request.method == "GET":
        kept = state.take_identity()
        if kept is None:
            return _identity_page(IdentityForm(formdata=None))
        form = IdentityForm(formdata=None, data={"nir": kept["nir"], "birth_date": kept["birth_date"]})
        for name, error in kept["errors"].items():
            if name in form and name != "csrf_token":
                form[name].errors = [error]
        form_error = msg(kept["form_error"]) if kept["form_error"] else None
        return _identity_page(form, status=400 if form.errors or form_error else 200,
                              notice=msg(kept["notice"]) if kept["notice"] else None,
                              focus_captcha=kept["focus_captcha"], form_error=form_error)

    form = IdentityForm()
    if request.form.get("action") == "new-captcha":  # « Nouvelle série »: nothing else is checked
        captcha.discard(form.captcha_handle.data)
        return _back_to_start(form, {}, notice="captcha_new", focus_captcha=True)

    outcome = captcha.check(form.captcha_handle.data, form.captcha.data)  # consumed, right or wrong
    valid = form.validate()
    if outcome is not captcha.Check.OK and not form.captcha.errors:
        form.captcha.errors = [msg(outcome.value).format(duration=duration(current_app.config["IDP_CAPTCHA_LIFETIME"]))]
    if not valid or outcome is not captcha.Check.OK:
        return _back_to_start(form, _field_errors(form), focus_captcha=valid)

    # A mail-server outage is told before anything is counted, account or not (no quota charged).
    try:
        mail.check_transport()
    except MailError as exc:
        current_app.logger.warning("Reset link request refused, mail transport down: %s", exc)
        return _to("mail_failed")

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
        return _to("case2_quota", until=attempt.locked_until.isoformat())

    user = db.session.scalar(select(User).where(User.nir == nir.normalize(form.nir.data)))
    matched = user is not None and user.birth_date == form.born
    if matched and not (user.email and user.email_verified):  # case 1
        audit.record("password_reset_refused", user_id=user.id, case=1)
        db.session.commit()
        return _to("case1_no_email", has_email=bool(user.email))
    # No account, or a birth date that does not match: the person typed is kept by the NIR's hash.
    audit.record("password_reset_requested", user_id=user.id if matched else None,
                 nir=None if matched else form.nir.data, detail={"matched": matched})
    limits.commit_keeping_loaded()  # the person is read by the link's job: not loaded again
    if matched:
        # Started a moment later, once the answer has left: the mail job's work shares no time with it.
        links.send_later(links.issue(user, quota, quota_key), delay=links.JOB_DELAY_SECONDS)
    state.set_outcome("mail_sent")
    return redirect(url_for(".mail_sent"), code=303)


# --- A form refused before its view: expired (CSRF), or over the per-IP limit ------------------------

#: The forms of the journey; their refusals too answer 303 to a GET. (The live check of step 5 is
#: fetched by the page's script, not navigated to: it keeps its direct answers.)
FORMS = ("recovery.start", "recovery.new_password")


@bp.errorhandler(CSRFError)
def _form_expired(error: CSRFError):
    """A form posted without its valid CSRF token (left open too long, cookies cleared)."""
    if request.endpoint == "recovery.start":  # the form again, what was typed kept, the message on top
        state.keep_identity(request.form.get("nir", ""), request.form.get("birth_date", ""), {},
                            form_error="csrf_recovery")
        return redirect(url_for(".start"), code=303)
    if request.endpoint == "recovery.new_password":
        return _to("refused", kind="expired")
    return render_template("errors/generic.html", title="Formulaire expiré", message=msg("csrf")), 400


@bp.errorhandler(TooManyRequests)
def _too_many(error: TooManyRequests):
    """The per-IP limit of a form (:mod:`.ratelimit`); the CAPTCHA's images and sounds keep their 429."""
    if request.method == "POST" and request.endpoint in FORMS:
        limit = getattr(error, "limit", None)
        retry_after = limit.limit.get_expiry() if limit is not None else 60
        return _to("refused", kind="too_many", retry_after=int(retry_after))
    return http_error_response(error)


@bp.route("/refus")
def refused():
    """A form refused before it was read: « Trop de demandes » (429) or « Formulaire expiré » (400)."""
    kept = state.outcome("refused")
    if kept is None or kept.get("kind") not in ("too_many", "expired"):
        return redirect(url_for(".start"), code=303)
    if kept["kind"] == "too_many":
        retry_after = str(max(1, int(kept.get("retry_after") or 60)))
        return render_template("recovery/refused.html", kind="too_many", has_error=True), 429, {"Retry-After": retry_after}
    return render_template("recovery/refused.html", kind="expired", has_error=True), 400


# The pages a step 2 submission leads to: GETs that show the last submission's outcome (a reload
# shows it again); without one (typed by hand, or another submission since), the form.

@bp.route("/envoi-impossible")
def case1_no_email():
    """Case 1 (step 3bis): no validated email address, no mail can be sent."""
    kept = state.outcome("case1_no_email")
    if kept is None:
        return redirect(url_for(".start"), code=303)
    return render_template("recovery/case1_no_email.html", has_email=bool(kept.get("has_email")),
                           has_error=True), 403


@bp.route("/demandes-bloquees")
def case2_quota():
    """Case 2: too many mails asked for; the service is blocked for this NIR until a given time."""
    kept = state.outcome("case2_quota")
    try:
        until = datetime.fromisoformat(kept["until"]) if kept else None
    except (KeyError, TypeError, ValueError):
        until = None
    if until is None:
        return redirect(url_for(".start"), code=303)
    return render_template("recovery/case2_quota.html", until=until, has_error=True), 429


@bp.route("/service-indisponible")
def mail_failed():
    """The mail server does not answer: nothing was counted."""
    if state.outcome("mail_failed") is None:
        return redirect(url_for(".start"), code=303)
    return render_template("recovery/mail_failed.html", has_error=True), 503, MailError.headers()


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
    """Step 3, for every submission that passed the form (account or not)."""
    return render_template("recovery/mail_sent.html", link_minutes=links.lifetime_minutes())


@bp.route("/aide")
def help_page():
    """« Je n'ai pas reçu le mail » (the seed's checklist)."""
    return render_template("recovery/help.html", link_minutes=links.lifetime_minutes())


# --- Steps 4 to 6 ---------------------------------------------------------------------------------

def _invalid_link():
    return redirect(url_for(".link_invalid"), code=303)


def _live_reset() -> PasswordReset | None:
    """The link this browser opened (step 4), if it can still be used."""
    reset_id = state.reset_id()
    return links.find_live_by_id(reset_id) if reset_id is not None else None


def _password_page(form: NewPasswordForm, broken: list[str] | None = None, status: int = 200):
    return render_template(
        "recovery/new_password.html",
        form=form,
        rules=password_policy.checklist(broken),
        specials=password_policy.SPECIALS,
        min_length=current_app.config["IDP_PASSWORD_MIN_LENGTH"],
        max_length=current_app.config["IDP_PASSWORD_MAX_LENGTH"],
        check_url=url_for(".check_password"),
        has_error=bool(form.errors),
    ), status


@bp.route("/nouveau", methods=["GET"])
def open_link():
    """Step 4: the link of the mail, ``/mot-de-passe-oublie/nouveau#<token>``.

    The token is in the fragment, which the browser never sends: this page's script
    posts it (``action=open``), so it appears in no access log. Opening the link
    (a mail scanner does) consumes nothing.
    """
    return render_template("recovery/link_open.html", form=FlaskForm())


@bp.route("/lien-invalide")
def link_invalid():
    """The link is expired, used, replaced by a newer one, or was never one."""
    return render_template("recovery/link_invalid.html", link_minutes=links.lifetime_minutes(), has_error=True), 400


@bp.route("/nouveau", methods=["POST"])
def new_password():
    """Step 4's link posted (``action=open``), then step 5's new password; each answers 303 (:mod:`.state`)."""
    if request.form.get("action") == "open":  # the link's page opened: consumes nothing
        reset = links.find_live(crypto.link_token(request.form))
        if reset is None:
            return _invalid_link()
        state.keep_reset(reset.id)
        return redirect(url_for(".password_page"), code=303)

    reset = _live_reset()
    if reset is None:
        return _invalid_link()
    user = db.session.get(User, reset.user_id)
    form = NewPasswordForm()
    if not form.validate():
        state.keep_password_errors(_field_errors(form), None)
        return redirect(url_for(".password_page"), code=303)
    password = form.password.data
    broken = password_policy.broken_for(user, password)
    if broken:
        error = (msg("password_rules_broken") + " "
                 + " ; ".join(r["text"] for r in password_policy.checklist(broken) if r["state"] == "unmet") + ".")
        bad = password_policy.disallowed_characters(password)
        if bad:
            shown = ", ".join("espace" if c == " " else f"« {c} »" for c in bad[:10])
            error += " " + msg("password_disallowed_characters").format(chars=shown)
        state.keep_password_errors({"password": error}, broken)
        return redirect(url_for(".password_page"), code=303)
    if not crypto.equals(password, form.confirm.data):
        state.keep_password_errors({"confirm": msg("password_confirm_mismatch")}, None)
        return redirect(url_for(".password_page"), code=303)

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
    state.forget_reset()
    return _to("done")


@bp.route("/nouveau/mot-de-passe")
def password_page():
    """Step 5: « Je choisis un nouveau mot de passe », for the link this browser opened, errors included."""
    if _live_reset() is None:
        state.forget_reset()
        return _invalid_link()
    errors, broken = state.take_password_errors()
    form = NewPasswordForm(formdata=None)
    for name, error in errors.items():
        if name in form and name != "csrf_token":
            form[name].errors = [error]
    return _password_page(form, broken=broken, status=400 if form.errors else 200)


@bp.route("/nouveau/enregistre")
def done():
    """Step 6: the new password is saved (a reload shows it again)."""
    if state.outcome("done") is None:
        return redirect(url_for(".start"), code=303)
    return render_template("recovery/done.html")


@bp.route("/nouveau/verifier", methods=["POST"])
def check_password():
    """The live check of the page (JavaScript): the rules the typed password breaks.

    The NIR and the birth date stay on the server: the page only learns whether
    the password contains them.
    """
    reset = _live_reset()
    if reset is None:
        return jsonify(error="link"), 404
    password = request.form.get("password", "")
    if len(password) > 200:
        return jsonify(error="too_long"), 400
    return jsonify(broken=password_policy.broken_for(db.session.get(User, reset.user_id), password))
