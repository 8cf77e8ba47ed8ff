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


def _read_birth_date(raw: str | None) -> tuple[date | None, str | None]:
    """A birth date as typed → (the date, None) or (None, the key of the message that says what is wrong).

    Written JJ/MM/AAAA (or with -, . or spaces), JJMMAAAA (digits only, what a phone's
    numeric keypad can type), or AAAA-MM-JJ (what a browser's autofill may give).
    """
    raw = (raw or "").strip()
    if len(raw) > 32:
        return None, "birth_date_format"
    if m := _DMY.match(raw) or _COMPACT.match(raw):
        day, month, year = (int(g) for g in m.groups())
    elif m := _YMD.match(raw):
        year, month, day = (int(g) for g in m.groups())
    else:
        return None, "birth_date_format"
    try:
        born = date(year, month, day)
    except ValueError:
        return None, "birth_date_impossible"  # 31/02, 12/13, 00/05…
    if born > date.today():
        return None, "birth_date_future"
    if born.year < OLDEST_YEAR:
        return None, "birth_date_too_old"
    return born, None


def parse_birth_date(raw: str | None) -> date | None:
    """The birth date typed, or None if it is not a possible, past date (see :func:`_read_birth_date`)."""
    return _read_birth_date(raw)[0]


def valid_birth_date(form, field) -> None:
    problem = _read_birth_date(field.data)[1]
    if problem:
        raise ValidationError(msg(problem).format(oldest=OLDEST_YEAR))


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


def new_password_field() -> PasswordField:
    """« Nouveau mot de passe » (its rules are checked by the view: password_policy)."""
    return PasswordField(
        "Nouveau mot de passe",
        validators=[InputRequired(msg("new_password_required")), Length(max=200, message=msg("field_too_long"))],
    )


def confirm_field() -> PasswordField:
    """« Confirmation du nouveau mot de passe »."""
    return PasswordField(
        "Confirmation du nouveau mot de passe",
        validators=[InputRequired(msg("password_confirm_required")), Length(max=200, message=msg("field_too_long"))],
    )


class NewPasswordForm(FlaskForm):
    """Step 5: « Nouveau mot de passe » and its confirmation (the security space's change form has them too)."""

    password = new_password_field()
    confirm = confirm_field()
