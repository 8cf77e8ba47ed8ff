"""``/`` and the pages linked from the footer (no login, no database, no form).

This module sits at the top of the imports, beside ``cli``: the cookie page names the
cookies that ``sessions``, ``login.flow`` and ``mfa.devices`` set, from their own constants.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from .. import cookies, sessions
from ..login import flow
from ..mfa import devices

bp = Blueprint("public", __name__)


@bp.route("/")
def home():
    """What this service is: the page a person reaches by typing the provider's address (not a 404)."""
    return render_template("public/home.html")


@bp.route("/accessibilite")
def accessibility():
    """Déclaration d'accessibilité (RGAA): the footer's « Accessibilité : … » links here."""
    return render_template("public/accessibility.html")


@bp.route("/mentions-legales")
def legal():
    return render_template("public/legal.html")


@bp.route("/donnees-personnelles")
def privacy():
    return render_template("public/privacy.html")


@bp.route("/gestion-des-cookies")
def cookie_list():
    """Every cookie the provider sets, under the name the browser sees, with its purpose and its lifetime.

    The names come from the modules that set them (``__Host-`` prefixed over https), the lifetimes
    from the settings, so the page says what the browser really holds.
    """
    config = current_app.config
    names = {
        "session": cookies.name(sessions.COOKIE),
        "flow": cookies.name(flow.COOKIE),
        "device": cookies.name(devices.COOKIE),
        "csrf": config["SESSION_COOKIE_NAME"],  # Flask's session: the CSRF token of the forms (not permanent)
    }
    lifetimes = {
        "session": config["IDP_SESSION_ABSOLUTE_LIFETIME"],
        "flow": config["IDP_LOGIN_FLOW_LIFETIME"],
        "device": config["IDP_TRUSTED_DEVICE_LIFETIME"],
    }
    if config["IDP_DEMO"]:  # the demo relying party's own cookie, on /demo only
        from ..demo import rp as demo_rp

        names["demo"], lifetimes["demo"] = demo_rp.COOKIE, demo_rp.COOKIE_MAX_AGE
    return render_template("public/cookies.html", names=names, lifetimes=lifetimes)
