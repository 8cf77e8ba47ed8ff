"""The second factor's pages in the security space (issue 12): the authenticator app and the recovery codes.

=================================================  ==============================================
``/mon-compte/securite/application``               whether an app is active, codes left, actions
``/mon-compte/securite/application/activer``       POST: start an enrolment; GET: the QR code, the key
``/mon-compte/securite/application/activer/code``  POST: the first code; right → active, new codes
``/mon-compte/securite/codes-de-secours/nouveaux`` POST: new codes (old ones void); GET: shown once
``/mon-compte/securite/application/retirer``       GET: confirmation; POST: app and codes removed
=================================================  ==============================================

The services are :mod:`idp.mfa.totp` and :mod:`idp.mfa.recovery_codes` (they write the
audit rows ``mfa_app_enrolled``, ``mfa_app_removed``, ``recovery_codes_generated``; the
view commits them with the change). Every change, and every page that shows a secret
(the pending key), needs the fresh login (:func:`.guard.fresh_login_required`).

* The pending secret stays in the database, encrypted (:mod:`idp.mfa.totp`): the GET of
  the enrolment page reads it back, so a reload shows the same key and the secret never
  travels in a URL, a cookie or a log.
* The first code is counted before it is compared: one attempt of the ``app-enrol``
  counter (:func:`enrol_attempts`) reserved by :func:`idp.limits.reserve`'s single
  statement; ``IDP_ACCOUNT_APP_ENROL_FAILURES`` wrong codes lock the confirmation for
  ``IDP_ACCOUNT_APP_ENROL_LOCK`` seconds, whatever the number of parallel requests. A count
  of its own: a person who mistypes here never locks their login (case 5's counter).
* New recovery codes are shown once (:mod:`.shown_once`).
"""

from __future__ import annotations

from flask import current_app, redirect, render_template, url_for

from .. import audit, limits, sessions
from ..extensions import db
from ..messages import msg
from ..mfa import recovery_codes, totp
from . import bp, shown_once
from .forms import ActionForm, AppConfirmForm
from .guard import fresh_login_required, is_fresh, person_session, session_required
from .views import _errors_of, _tell, _told, _with_errors

APP_PAGE = "account.app_page"
ENROL_PAGE = "account.app_enrol_page"
REMOVE_PAGE = "account.app_remove_page"


def enrol_attempts() -> limits.Policy:
    """Wrong first codes of a new app, per person: the last allowed one is compared, and its failure locks."""
    cfg = current_app.config
    return limits.Policy("app-enrol", cfg["IDP_ACCOUNT_APP_ENROL_FAILURES"], cfg["IDP_ACCOUNT_APP_ENROL_LOCK"])


def _key(user_id: int) -> str:
    return f"user:{user_id}"


def _render(template: str, page: str, **context) -> str:
    """A page of the app with what the last POST left for it (as :func:`.views._page` does)."""
    row = person_session()
    outcome = _told(page)
    sessions.touch(row)
    return render_template(template, person=row.user, auth=row, fresh=is_fresh(row), outcome=outcome,
                           action=ActionForm(), **context)


# --- The app's page ------------------------------------------------------------------------------

@bp.route("/application")
@session_required
def app_page():
    user = person_session().user
    return _render("account/app.html", APP_PAGE, app_active=user.has_app,
                   since=user.totp.confirmed_at if user.has_app else None,
                   codes_left=recovery_codes.remaining(user), total=current_app.config["IDP_RECOVERY_CODES"])


# --- Enrolment ------------------------------------------------------------------------------------

@bp.route("/application/activer", methods=["POST"])
@fresh_login_required(back=APP_PAGE)
def app_enrol_start():
    totp.begin_enrolment(person_session().user)  # a new pending secret; an active app stays active meanwhile
    db.session.commit()
    return redirect(url_for(".app_enrol_page"), code=303)


@bp.route("/application/activer", methods=["GET"])
@fresh_login_required()
def app_enrol_page():
    row = person_session()
    enrolment = totp.pending_enrolment(row.user)
    if enrolment is None:  # nothing under way (already confirmed, removed, or never started)
        return redirect(url_for(".app_page"), code=303)
    outcome = _told(ENROL_PAGE)
    form = _with_errors(AppConfirmForm(formdata=None), outcome)
    sessions.touch(row)
    cfg = current_app.config
    return render_template("account/app_enrol.html", form=form, outcome=outcome, person=row.user,
                           enrolment=enrolment, replacing=row.user.has_app, period=cfg["IDP_TOTP_PERIOD"],
                           issuer=cfg["IDP_TOTP_ISSUER"])


@bp.route("/application/activer/code", methods=["POST"])
@fresh_login_required(back=ENROL_PAGE)
def app_enrol_confirm():
    form = AppConfirmForm()
    if not form.validate_on_submit():
        return _tell(ENROL_PAGE, errors=_errors_of(form))
    row = person_session()
    user = row.user
    if totp.pending_enrolment(user) is None:  # confirmed meanwhile (another tab), or removed: nothing to count
        return _tell(APP_PAGE, error="app_enrol_none")
    policy, key = enrol_attempts(), _key(user.id)
    # Reserved (and committed) before the code is compared: no more comparisons than the rule, on any worker.
    attempt = limits.reserve(policy, key)
    if not attempt.allowed:
        return _tell(ENROL_PAGE, error="app_enrol_locked", until=attempt.locked_until.isoformat())
    if not totp.confirm_enrolment(user, form.code.data):
        if attempt.locked_until is not None:  # this wrong code was the last one allowed
            audit.record("lock_set", user_id=user.id, nir=user.nir,
                         detail={"kind": "app-enrol", "until": attempt.locked_until.isoformat() + "Z"})
            db.session.commit()
            return _tell(ENROL_PAGE, error="app_enrol_locked", errors={"code": msg("app_enrol_code_wrong")},
                         until=attempt.locked_until.isoformat())
        db.session.rollback()
        return _tell(ENROL_PAGE, errors={"code": msg("app_enrol_code_wrong")})
    limits.release(policy, key)
    codes = recovery_codes.generate(user)  # new codes with each new app: the earlier ones stop working
    db.session.commit()
    shown_once.keep(row, codes, reason="enrolled")
    return redirect(url_for(".recovery_codes_page"), code=303)


# --- Recovery codes -------------------------------------------------------------------------------

@bp.route("/codes-de-secours/nouveaux", methods=["POST"])
@fresh_login_required(back=APP_PAGE)
def recovery_codes_new():
    row = person_session()
    if not row.user.has_app:  # codes stand in for the app at login: without one they serve nothing
        return _tell(APP_PAGE, error="app_none")
    codes = recovery_codes.generate(row.user)
    db.session.commit()
    shown_once.keep(row, codes, reason="regenerated")
    return redirect(url_for(".recovery_codes_page"), code=303)


@bp.route("/codes-de-secours/nouveaux", methods=["GET"])
@session_required
def recovery_codes_page():
    row = person_session()
    kept = shown_once.take(row)
    sessions.touch(row)
    return render_template("account/recovery_codes.html", kept=kept, person=row.user, outcome=None)


# --- Removal --------------------------------------------------------------------------------------

@bp.route("/application/retirer", methods=["GET"])
@fresh_login_required()
def app_remove_page():
    row = person_session()
    if not row.user.has_app:
        return redirect(url_for(".app_page"), code=303)
    return _render("account/app_remove.html", REMOVE_PAGE, codes_left=recovery_codes.remaining(row.user))


@bp.route("/application/retirer", methods=["POST"])
@fresh_login_required(back=REMOVE_PAGE)
def app_remove():
    user = person_session().user
    if not user.has_app:
        return _tell(APP_PAGE, error="app_none")
    totp.remove(user)  # audited mfa_app_removed
    removed = recovery_codes.remove(user)  # they stood in for the app: they go with it
    db.session.commit()
    return _tell(APP_PAGE, notice="app_removed", count=removed)
