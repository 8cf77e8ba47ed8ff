"""Forms of the second-factor steps of the login (issue 12); CSRF comes with Flask-WTF."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length, Regexp, ValidationError

from ..messages import msg
from . import recovery_codes


def _recovery_code_shape(form, field) -> None:
    if recovery_codes.normalize(field.data or "") is None:
        raise ValidationError(msg("recovery_code_format"))


class AppCodeForm(FlaskForm):
    """The code the authenticator app shows, and « J'utilise mon ordinateur personnel »."""

    code = StringField(
        "Code de l'application",
        validators=[DataRequired(msg("app_code_required")), Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message=msg("app_code_format"))],
    )
    remember = BooleanField("J'utilise mon ordinateur personnel")


class RecoveryCodeForm(FlaskForm):
    """One of the recovery codes given at enrolment."""

    code = StringField(
        "Code de secours",
        validators=[DataRequired(msg("recovery_code_required")), Length(max=40, message=msg("recovery_code_format")),
                    _recovery_code_shape],
    )
