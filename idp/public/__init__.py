"""The public pages every French public service shows: home page, accessibility, legal notice, privacy, cookies.

They have no state and read only settings (``IDP_ACCESSIBILITY_*``, ``IDP_LEGAL_*``,
``IDP_PRIVACY_CONTACT``); the footer of ``base.html`` links to them from every page.
An operator fills in what is theirs through those settings, or replaces a whole page
with a template of the same path in ``IDP_TEMPLATE_OVERRIDES_DIR``.
"""

from __future__ import annotations

from jinja2 import ChoiceLoader, FileSystemLoader

from .views import bp


def init_app(app) -> None:
    overrides = app.config.get("IDP_TEMPLATE_OVERRIDES_DIR")
    if overrides:  # the operator's templates first, the provider's for everything they do not replace
        app.jinja_loader = ChoiceLoader([FileSystemLoader(overrides), app.jinja_loader])
    app.register_blueprint(bp)


__all__ = ["bp", "init_app"]
