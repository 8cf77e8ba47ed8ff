"""The rules of a new password (idp/recovery/password_policy.py): one test per rule, then properties.

A pure function: no app, no database. The keys it returns are the message
catalogue's, so each broken rule has its French text.
"""

from __future__ import annotations

import string
from datetime import date

import pytest
from hypothesis import given, settings, strategies as st

from idp.messages import MESSAGES
from idp.recovery import password_policy as pp
from idp.recovery.forms import parse_birth_date

NIR = "185057800608491"          # 1 85 05 78 006 084 91
BORN = date(1985, 5, 12)
GOOD = "Vacances-Bretagne"       # letters of both cases and a special character, nothing personal


def broken(password: str, nir: str | None = NIR, born: date | None = BORN) -> list[str]:
    return pp.broken_rules(password, nir, born)


def test_a_good_password_breaks_nothing():
    assert broken(GOOD) == []
    assert broken("Motdepasse2024") == []   # a digit instead of a special character
    assert broken("abcDEF" + pp.SPECIALS) == []


def test_every_rule_has_a_french_text():
    assert set(pp.RULES) <= set(MESSAGES)
    assert MESSAGES[pp.LENGTH].format(min=8, max=50) == "Comporter entre 8 et 50 caractères"


# --- One test per rule --------------------------------------------------------------------------

@pytest.mark.parametrize("password, ok", [
    ("Abcdef1", False), ("Abcdef1!", True), ("A1" + "b" * 48, True), ("A1" + "b" * 49, False), ("", False),
])
def test_rule_length_8_to_50(password, ok):
    assert (pp.LENGTH not in broken(password)) is ok


@pytest.mark.parametrize("password, ok", [
    ("vacances-bretagne", False), ("VACANCES-BRETAGNE", False), ("Vacances-bretagne", True),
    ("ÉÉÉ-ééé-2024", False),  # accented letters are not Latin a-z / A-Z
])
def test_rule_lower_and_upper_case(password, ok):
    assert (pp.CASE not in broken(password)) is ok


@pytest.mark.parametrize("password, ok", [
    ("VacancesBretagne", False), ("VacancesBretagne7", True), ("Vacances_Bretagne", True), ("Vacances Bretagne", False),
])
def test_rule_digit_or_special_character(password, ok):
    assert (pp.DIGIT_OR_SPECIAL not in broken(password)) is ok


@pytest.mark.parametrize("password, bad", [
    ("Vacances-Bretagne", []), ("Vacances Bretagne-1", [" "]), ("Vacances-Brétagne", ["é"]),
    ("Vacances-€-Bretagne", ["€"]), ("Vacances\tBretagne1", ["\t"]), ("Ça-va-1234ça", ["Ç", "ç"]),
])
def test_rule_only_allowed_characters(password, bad):
    assert (pp.ALLOWED_ONLY in broken(password)) is bool(bad)
    assert pp.disallowed_characters(password) == bad


@pytest.mark.parametrize("written", [
    "185057800608491", "1850578006084", "1 85 05 78 006 084 91", "1.85.05.78.006.084.91", "1-85-05-78-006-084 91",
])
def test_rule_not_the_nir(written):
    assert pp.NO_NIR in broken(f"Xy-{written}-Zz")
    assert pp.NO_NIR not in broken("Xy-1850578-Zz")  # a part of it is not it


def test_rule_not_the_nir_of_corsica():
    nir = "2690720A01234" + "00"
    assert pp.NO_NIR in broken("Ab-2690720a01234", nir=nir)


@pytest.mark.parametrize("written", [
    "12051985", "19850512", "12/05/1985", "12-05-1985", "12.05.1985", "1985-05-12", "120585", "12/05/85",
    "12 05 1985", "1985/05/12", "12/5/1985", "850512", "05/12/1985",
])
def test_rule_not_the_birth_date(written):
    assert pp.NO_BIRTH_DATE in broken(f"Vacances-{written}", nir=None)
    assert pp.NO_BIRTH_DATE not in broken("Vacances-13051985", nir=None)


def test_without_personal_data_those_rules_cannot_break():
    assert broken(f"Ab-{NIR}-12/05/1985", nir=None, born=None) == []


def test_rules_come_in_page_order():
    assert broken(" ") == [pp.LENGTH, pp.CASE, pp.DIGIT_OR_SPECIAL, pp.ALLOWED_ONLY]
    assert broken(f"Ab{NIR}12051985" + "x" * 30) == [pp.LENGTH, pp.NO_NIR, pp.NO_BIRTH_DATE]


# --- Properties ---------------------------------------------------------------------------------

ALLOWED_CHARS = string.ascii_letters + string.digits + pp.SPECIALS
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31))
nirs = st.builds(lambda sex, yy, mm, dept, rest: f"{sex}{yy:02d}{mm:02d}{dept:02d}{rest:06d}",
                 st.sampled_from("12"), st.integers(0, 99), st.integers(1, 12), st.integers(1, 95),
                 st.integers(0, 999_999))
no_digits = st.text(alphabet=string.ascii_letters + "!#$%&*+-_", max_size=20)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_property_the_answer_is_a_list_of_known_rules_in_order(password):
    result = pp.broken_rules(password, NIR, BORN)
    assert result == [r for r in pp.RULES if r in result]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_property_length_rule_iff_outside_8_to_50(password):
    assert (pp.LENGTH in pp.broken_rules(password)) == (not 8 <= len(password) <= 50)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_property_allowed_rule_iff_a_character_is_outside_the_set(password):
    assert (pp.ALLOWED_ONLY in pp.broken_rules(password)) == any(c not in ALLOWED_CHARS for c in password)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=ALLOWED_CHARS, min_size=1, max_size=40))
def test_property_case_rule_needs_both_cases(password):
    has_both = any(c.islower() for c in password) and any(c.isupper() for c in password)
    assert (pp.CASE in pp.broken_rules(password)) == (not has_both)


@settings(max_examples=200, deadline=None)
@given(dates, st.sampled_from(sorted(pp.birth_date_forms(BORN))), no_digits, no_digits)
def test_property_any_written_form_of_the_birth_date_is_refused(born, _, prefix, suffix):
    for form in pp.birth_date_forms(born):
        assert pp.NO_BIRTH_DATE in pp.broken_rules(prefix + form + suffix, None, born)


@settings(max_examples=200, deadline=None)
@given(dates, st.sampled_from(["", "/", "-", ".", " "]), st.booleans(), no_digits, no_digits)
def test_property_usual_forms_are_among_the_forms(born, sep, two_digit_year, prefix, suffix):
    year = f"{born.year % 100:02d}" if two_digit_year else f"{born.year}"
    written = sep.join([f"{born.day:02d}", f"{born.month:02d}", year])
    assert pp.NO_BIRTH_DATE in pp.broken_rules(prefix + written + suffix, None, born)
    assert pp.NO_BIRTH_DATE in pp.broken_rules(prefix + f"{born.year}-{born.month:02d}-{born.day:02d}" + suffix, None, born)


@settings(max_examples=200, deadline=None)
@given(nirs, st.lists(st.sampled_from(["", " ", ".", "-"]), min_size=14, max_size=14), st.booleans(), no_digits,
       no_digits)
def test_property_the_nir_however_spaced_is_refused(core, seps, with_key, prefix, suffix):
    nir = f"{core}{97 - int(core) % 97:02d}"
    chars = nir if with_key else core
    written = "".join(c + (seps[i] if i < len(chars) - 1 else "") for i, c in enumerate(chars))
    assert pp.NO_NIR in pp.broken_rules(prefix + written + suffix, nir, None)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.ascii_lowercase, min_size=4, max_size=20),
       st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=20),
       st.text(alphabet="!#$%&*+-_?@", min_size=1, max_size=8), nirs, dates)
def test_property_passwords_without_digits_that_follow_the_rules_pass(lower, upper, special, core, born):
    password = (lower + special + upper)[:50]
    assert pp.broken_rules(password, core + "00", born) == []


@settings(max_examples=200, deadline=None)
@given(dates, st.sampled_from(["{d:02d}/{m:02d}/{y}", "{d}/{m}/{y}", "{d:02d}-{m:02d}-{y}", "{d:02d}.{m:02d}.{y}",
                               "{y}-{m:02d}-{d:02d}", "{d:02d}{m:02d}{y}", " {d:02d} / {m:02d} / {y} "]))
def test_property_birth_dates_typed_on_step_2_are_read(born, pattern):
    typed = pattern.format(d=born.day, m=born.month, y=born.year)
    assert parse_birth_date(typed) == born


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_property_birth_date_parser_never_fails(typed):
    result = parse_birth_date(typed)
    assert result is None or (date(1890, 1, 1) <= result <= date.today())


@pytest.mark.parametrize("typed", ["31/02/1985", "12/13/1985", "00/05/1985", "12/05/1885", "12/05/2999", "1985",
                                   "12/05/85", "abc", "", "12//05/1985"])
def test_malformed_birth_dates_are_refused(typed):
    assert parse_birth_date(typed) is None
