"""Forms of the login pages (CSRF comes with Flask-WTF)."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp, ValidationError

from .. import nir
from ..messages import msg


def valid_nir(form, field) -> None:
    if not nir.is_valid(field.data or ""):
        raise ValidationError(msg("nir_invalid"))


def nir_field() -> StringField:
    """« Numéro de sécurité sociale », the same field on the login and forgotten-password pages."""
    return StringField(
        "Numéro de sécurité sociale",
        validators=[DataRequired(msg("nir_required")), Length(max=32, message=msg("field_too_long")), valid_nir],
    )


class PasswordForm(FlaskForm):
    """Step 0: NIR and password."""

    nir = nir_field()
    password = PasswordField(
        "Mot de passe",
        validators=[DataRequired(msg("password_required")), Length(max=128, message=msg("field_too_long"))],
    )


class CodeRequestForm(FlaskForm):
    """Step 1: « Recevoir un code de sécurité » (CSRF only)."""


class CodeForm(FlaskForm):
    """Step 3: the 6-digit code and « J'utilise mon ordinateur personnel »."""

    code = StringField(
        "Code de sécurité",
        validators=[DataRequired(msg("code_required")), Regexp(r"^\s*\d{6}\s*$", message=msg("code_format"))],
    )
    remember = BooleanField("J'utilise mon ordinateur personnel")
