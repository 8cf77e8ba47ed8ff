"""Forms of the security space (CSRF comes with Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Regexp

from ..messages import msg
from ..recovery.forms import confirm_field, new_password_field

#: One @, no space, a dotted domain: the rough check of ``idp users add`` (the link proves the rest).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class PasswordChangeForm(FlaskForm):
    """« Mot de passe actuel », then the new one twice (the forgotten-password rules)."""

    current = PasswordField(
        "Mot de passe actuel",
        validators=[DataRequired(msg("current_password_required")), Length(max=128, message=msg("field_too_long"))],
    )
    password = new_password_field()
    confirm = confirm_field()


class EmailChangeForm(FlaskForm):
    """« Nouvelle adresse mail »: a validation link goes there."""

    email = EmailField(
        "Nouvelle adresse mail",
        validators=[InputRequired(msg("new_email_required")), Length(max=254, message=msg("field_too_long")),
                    Regexp(EMAIL_PATTERN, message=msg("new_email_invalid"))],
    )


class ActionForm(FlaskForm):
    """A button that changes something (revoke, log out everywhere): CSRF only."""


class AppConfirmForm(FlaskForm):
    """The first code of a new authenticator app: it becomes active only when this code is right."""

    code = StringField(
        "Code affiché par l'application",
        validators=[DataRequired(msg("app_code_required")),
                    Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message=msg("app_code_format"))],
    )
