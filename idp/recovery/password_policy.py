"""The rules a new password must follow (seed ameli-forgot-password, step 5).

A pure function, :func:`broken_rules`, with no Flask and no database, so that the
pages, the live check and the administration command apply the same rules
(:func:`checklist` and :func:`broken_for` add the settings, for the pages). It
returns the rules the password breaks, as keys of :mod:`idp.messages` (the
French text of each rule), in the order the page lists them:

1. 8 to 50 characters (``PASSWORD_MIN_LENGTH``, ``PASSWORD_MAX_LENGTH``);
2. Latin lower-case and upper-case letters (a-z and A-Z);
3. a digit or a special character;
4. only allowed characters: Latin letters without accents, digits and the
   special characters of :data:`SPECIALS` (no space, no accented letter);
5. not the NIR, with or without separators;
6. not the birth date, in any usual written form (:func:`birth_date_forms`).
"""

from __future__ import annotations

import re
import string
from datetime import date

#: The special characters allowed: every ASCII punctuation sign.
SPECIALS = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
ALLOWED = frozenset(string.ascii_letters + string.digits + SPECIALS)

LENGTH = "password_rule_length"
CASE = "password_rule_case"
DIGIT_OR_SPECIAL = "password_rule_digit_or_special"
ALLOWED_ONLY = "password_rule_allowed"
NO_NIR = "password_rule_nir"
NO_BIRTH_DATE = "password_rule_birth_date"
#: Every rule, in the order of the page.
RULES = (LENGTH, CASE, DIGIT_OR_SPECIAL, ALLOWED_ONLY, NO_NIR, NO_BIRTH_DATE)

DEFAULT_MIN_LENGTH = 8
DEFAULT_MAX_LENGTH = 50

#: Separators people put in a date or a NIR.
_DATE_SEPARATORS = ("", "/", "-", ".", " ")
_NIR_SEPARATORS = re.compile(r"[\s./\-_]")


def birth_date_forms(born: date) -> set[str]:
    """The written forms of a date: JJMMAAAA, AAAAMMJJ, JJ/MM/AAAA, JJ-MM-AAAA, JJ.MM.AAAA,
    AAAA-MM-JJ, JJMMAA, AAMMJJ, MM/JJ/AAAA..., and without leading zeros when separated (1/5/1985)."""
    d, m = f"{born.day:02d}", f"{born.month:02d}"
    y4, y2 = f"{born.year:04d}", f"{born.year % 100:02d}"
    forms = set()
    for sep in _DATE_SEPARATORS:
        for parts in ((d, m, y4), (y4, m, d), (d, m, y2), (y2, m, d), (m, d, y4)):
            forms.add(sep.join(parts))
        if sep:
            du, mu = str(born.day), str(born.month)
            for parts in ((du, mu, y4), (du, mu, y2), (y4, mu, du), (mu, du, y4)):
                forms.add(sep.join(parts))
    return forms


def contains_birth_date(password: str, born: date | None) -> bool:
    return born is not None and any(form in password for form in birth_date_forms(born))


def nir_core(nir: str) -> str:
    """The 13 characters that identify the person (the NIR without its key), upper-case."""
    return _NIR_SEPARATORS.sub("", nir or "").upper()[:13]


def contains_nir(password: str, nir: str | None) -> bool:
    """The NIR (its first 13 characters, so with or without the key) in the password,
    however it is spaced or dotted."""
    core = nir_core(nir or "")
    return len(core) == 13 and core in _NIR_SEPARATORS.sub("", password).upper()


def disallowed_characters(password: str) -> list[str]:
    """The characters that are not allowed, each once, in order of appearance."""
    seen: list[str] = []
    for char in password:
        if char not in ALLOWED and char not in seen:
            seen.append(char)
    return seen


def broken_rules(password: str, nir: str | None = None, birth_date: date | None = None,
                 min_length: int = DEFAULT_MIN_LENGTH, max_length: int = DEFAULT_MAX_LENGTH) -> list[str]:
    """The rules ``password`` breaks (keys of the message catalogue), in page order; [] when it is fine."""
    password = password or ""
    broken = []
    if not min_length <= len(password) <= max_length:
        broken.append(LENGTH)
    if not (any("a" <= c <= "z" for c in password) and any("A" <= c <= "Z" for c in password)):
        broken.append(CASE)
    if not any(c in string.digits or c in SPECIALS for c in password):
        broken.append(DIGIT_OR_SPECIAL)
    if disallowed_characters(password):
        broken.append(ALLOWED_ONLY)
    if contains_nir(password, nir):
        broken.append(NO_NIR)
    if contains_birth_date(password, birth_date):
        broken.append(NO_BIRTH_DATE)
    return broken


# --- With the settings: what the pages show (the forgotten-password page and the security space's) ---

def checklist(broken: list[str] | None = None) -> list[dict]:
    """The rules as a page lists them (French text from :mod:`idp.messages`), each ``met`` or ``unmet``
    once a password was checked (``broken``), or neither before."""
    from flask import current_app

    from ..messages import msg

    cfg = current_app.config

    def state(key: str) -> str | None:
        return None if broken is None else ("unmet" if key in broken else "met")

    return [{"key": key, "text": msg(key).format(min=cfg["IDP_PASSWORD_MIN_LENGTH"], max=cfg["IDP_PASSWORD_MAX_LENGTH"]),
             "state": state(key)} for key in RULES]


def broken_for(user, password: str) -> list[str]:
    """:func:`broken_rules` for ``user`` (their NIR and birth date), with the configured lengths."""
    from flask import current_app

    cfg = current_app.config
    return broken_rules(password, user.nir, user.birth_date, cfg["IDP_PASSWORD_MIN_LENGTH"], cfg["IDP_PASSWORD_MAX_LENGTH"])

