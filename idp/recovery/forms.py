"""Forms of the forgotten-password pages (CSRF comes with Flask-WTF)."""

from __future__ import annotations

import re
from datetime import date

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from ..login.forms import nir_field
from ..messages import msg
from .captcha import MAX_HANDLE_LENGTH

_DMY = re.compile(r"^(\d{1,2})\s*[/.\- ]\s*(\d{1,2})\s*[/.\- ]\s*(\d{4})$")
_YMD = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")  # what <input type="date"> sends
_COMPACT = re.compile(r"^(\d{2})(\d{2})(\d{4})$")  # JJMMAAAA
OLDEST_YEAR = 1890


def parse_birth_date(raw: str | None) -> date | None:
    """A birth date typed JJ/MM/AAAA (or with -, . or spaces, or JJMMAAAA, or AAAA-MM-JJ); None if not a past date."""
    raw = (raw or "").strip()
    if len(raw) > 32:
        return None
    if m := _DMY.match(raw) or _COMPACT.match(raw):
        day, month, year = (int(g) for g in m.groups())
    elif m := _YMD.match(raw):
        year, month, day = (int(g) for g in m.groups())
    else:
        return None
    try:
        born = date(year, month, day)
    except ValueError:
        return None
    return born if OLDEST_YEAR <= born.year and born <= date.today() else None


def valid_birth_date(form, field) -> None:
    if parse_birth_date(field.data) is None:
        raise ValidationError(msg("birth_date_invalid"))


class IdentityForm(FlaskForm):
    """Step 2: NIR, birth date and the CAPTCHA."""

    nir = nir_field()
    birth_date = StringField(
        "Date de naissance",
        validators=[DataRequired(msg("birth_date_required")), Length(max=32, message=msg("field_too_long")),
                    valid_birth_date],
    )
    # Checked by idp.recovery.captcha (which consumes the series), not by a validator.
    captcha = StringField("Caractères de l'image", validators=[Length(max=32, message=msg("field_too_long"))])
    captcha_handle = HiddenField(validators=[Length(max=MAX_HANDLE_LENGTH)])

    @property
    def born(self) -> date | None:
        return parse_birth_date(self.birth_date.data)


class NewPasswordForm(FlaskForm):
    """Step 5: « Nouveau mot de passe » and its confirmation."""

    password = PasswordField(
        "Nouveau mot de passe",
        validators=[InputRequired(msg("new_password_required")), Length(max=200, message=msg("field_too_long"))],
    )
    confirm = PasswordField(
        "Confirmation du nouveau mot de passe",
        validators=[InputRequired(msg("password_confirm_required")), Length(max=200, message=msg("field_too_long"))],
    )
