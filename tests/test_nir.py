"""The NIR: normalisation, control key (Corsica included), validation."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from idp import nir

# A real-looking NIR: woman born in May 1985 in Yvelines (78), commune 006, order 084.
BODY = "2850578006084"
KEY = 97 - int(BODY) % 97
VALID = f"{BODY}{KEY:02d}"


def test_control_key():
    assert nir.control_key(BODY) == KEY
    assert nir.control_key("1850578006084") == 91
    assert 1 <= nir.control_key("0000000000000") == 97  # 0 mod 97: key 97, never 00


@pytest.mark.parametrize("dept, numeric", [("2A", "19"), ("2B", "18")])
def test_control_key_corsica(dept, numeric):
    body = f"18505{dept}012345"
    expected = 97 - int(f"18505{numeric}012345") % 97
    assert nir.control_key(body) == expected
    assert nir.control_key(body.lower().upper()) == expected
    full = nir.with_key(body)
    assert full == f"{body}{expected:02d}"
    assert nir.is_valid(full)
    assert nir.is_valid(full.lower())
    assert nir.validate(full.lower()) == full
    # 2A and 2B give different keys: swapping the department breaks the key.
    other = "2B" if dept == "2A" else "2A"
    assert not nir.is_valid(full[:5] + other + full[7:])
    # The key is the one of the numeric twin (department 19 or 18).
    assert nir.with_key(f"18505{numeric}012345")[13:] == full[13:]


def test_normalize():
    assert nir.normalize(" 2 85 05 78 006 084 xx ") == "2850578006084XX"
    assert nir.normalize("2.85.05.2a.006.084-12") == "285052A00608412"
    assert nir.normalize("\t2 85\u00a005") == "28505"  # tabs and no-break spaces too
    assert nir.normalize("") == ""
    assert nir.normalize(None) == ""


def test_is_valid_and_validate():
    assert nir.is_valid(VALID)
    spaced = f"{VALID[0]} {VALID[1:3]} {VALID[3:5]} {VALID[5:7]} {VALID[7:10]} {VALID[10:13]} {VALID[13:]}"
    assert nir.is_valid(spaced)
    assert nir.validate(spaced) == VALID
    assert nir.validate(VALID.replace("", " ").strip()) == VALID


@pytest.mark.parametrize("value", [
    "",
    VALID[:14],                         # too short
    VALID + "0",                        # too long
    f"{BODY}{(KEY % 97) + 1:02d}",      # wrong key
    f"{BODY}00",
    f"{BODY}98",
    "5" + VALID[1:],                    # sex 5, 6, 9 and 0 do not exist
    "0" + VALID[1:],
    "9" + VALID[1:],
    nir.with_key("2850078006084"),      # month 00
    nir.with_key("2851378006084"),      # month 13
    nir.with_key("2854378006084"),      # month 43
    "285052C00608412",                  # department 2C does not exist
    "28505A8006084" + "12",             # a letter elsewhere
    f"{BODY}1A",
])
def test_invalid(value):
    assert not nir.is_valid(value)
    with pytest.raises(nir.InvalidNIR):
        nir.validate(value)


@pytest.mark.parametrize("month", ["01", "12", "20", "42", "50", "99"])
def test_fictitious_months_are_accepted(month):
    # 20-42 and 50-99: people registered without a known month of birth.
    assert nir.is_valid(nir.with_key(f"185{month}78006084"))


@pytest.mark.parametrize("sex", "123478")
def test_sex_digits(sex):
    assert nir.is_valid(nir.with_key(f"{sex}850578006084"))


def test_with_key_normalises():
    assert nir.with_key("2 85 05 78 006 084") == VALID
    assert nir.with_key("2 85 05 2a 006 084") == nir.with_key("285052A006084")


def test_invalid_nir_is_a_value_error():
    assert issubclass(nir.InvalidNIR, ValueError)


# --- property: the key catches every single-digit error ---------------------------------------

MONTHS = [f"{m:02d}" for m in (*range(1, 13), *range(20, 43), *range(50, 100))]
digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


@st.composite
def bodies(draw) -> str:
    """13 characters the format accepts: sex, year, valid month, department (2A/2B too), commune, order."""
    sex = draw(st.sampled_from("123478"))
    year = draw(st.text(alphabet="0123456789", min_size=2, max_size=2))
    month = draw(st.sampled_from(MONTHS))
    dept = draw(st.one_of(st.text(alphabet="0123456789", min_size=2, max_size=2), st.sampled_from(["2A", "2B"])))
    rest = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    return f"{sex}{year}{month}{dept}{rest}"


@given(body=bodies(), data=st.data())
@example(body="1850578006084", data=None)
@example(body="285052A012345", data=None)
@example(body="285052B000000", data=None)
def test_single_digit_change_is_always_detected(body, data):
    """with_key(body) is valid, and changing any one of its digits makes it invalid.

    Changing digit k by d (1 <= |d| <= 9) changes the number by d * 10**k; 97 is
    prime and divides neither d nor 10**k, so the number mod 97, hence the
    expected key, changes. A changed key digit no longer matches the unchanged
    body. (The Corsican letters are not digits; the substitution 2A=19, 2B=18 is
    the same on both sides, so the argument holds for them too.)
    """
    full = nir.with_key(body)
    assert len(full) == 15
    assert nir.is_valid(full)
    assert nir.validate(full) == full

    positions = [i for i, c in enumerate(full) if c.isdigit()]
    if data is None:  # the explicit examples: try every position and every digit
        changes = [(i, d) for i in positions for d in "0123456789" if d != full[i]]
    else:
        i = data.draw(st.sampled_from(positions), label="position")
        d = data.draw(digits.filter(lambda c: c != full[i]), label="new digit")
        changes = [(i, d)]
    for i, d in changes:
        changed = full[:i] + d + full[i + 1:]
        assert not nir.is_valid(changed), (full, changed)


@given(body=bodies())
def test_key_is_two_digits_between_01_and_97(body):
    key = nir.with_key(body)[13:]
    assert key.isdigit() and 1 <= int(key) <= 97


# --- python-stdnum: what it checks, what the project adds (the decision, and its corpus) -----------------
#
# idp.nir delegates the format (digits, 2A/2B, length) and the key to stdnum.fr.nir, and adds three rules
# stdnum lacks: the sex digit (1, 2, 3, 4, 7, 8), the month (01-12, 20-42, 50-99) and the separators people
# type besides spaces and dots (tabs, no-break spaces, dashes). The corpus below shows where the two agree and
# the only places they differ; the property test shows that they never differ anywhere else.

from stdnum.fr import nir as stdnum_nir  # noqa: E402

#: (NIR as typed, valid for the project, valid for stdnum, why)
CORPUS = [
    (VALID, True, True, "Yvelines, May 1985"),
    (nir.with_key("188042A004012"), True, True, "Corse-du-Sud (2A)"),
    (nir.with_key("188042B004012"), True, True, "Haute-Corse (2B)"),
    ("253072B07300470", True, True, "stdnum's own 2B example"),
    ("253072A07300443", True, True, "stdnum's own 2A example"),
    ("2 95 10 99 126 111 93", True, True, "born abroad (99), spaced"),
    (nir.with_key("1850199001001"), True, True, "January"),
    (nir.with_key("1851299001001"), True, True, "December"),
    (nir.with_key("1852099001001"), True, True, "month 20: unknown month"),
    (nir.with_key("1854299001001"), True, True, "month 42"),
    (nir.with_key("1855099001001"), True, True, "month 50"),
    (nir.with_key("1859999001001"), True, True, "month 99"),
    (nir.with_key("3850578006084"), True, True, "sex 3: provisional"),
    (nir.with_key("7850578006084"), True, True, "sex 7: temporary"),
    ("2.85.05.78.006.084." + VALID[13:], True, True, "dots"),
    (f"{BODY}{KEY % 97 + 1:02d}", False, False, "wrong key"),
    ("253072C07300443", False, False, "department 2C"),
    (VALID[:14], False, False, "too short"),
    (nir.with_key("2850578006084")[:-1] + "A", False, False, "letter in the key"),
    # The project's rules on top of stdnum:
    (nir.with_key("1850099001001"), False, True, "month 00"),
    (nir.with_key("1851399001001"), False, True, "month 13"),
    (nir.with_key("1854399001001"), False, True, "month 43"),
    (nir.with_key("1854999001001"), False, True, "month 49"),
    (nir.with_key("5850578006084"), False, True, "sex 5"),
    (nir.with_key("0850578006084"), False, True, "sex 0"),
    (nir.with_key("9850578006084"), False, True, "sex 9"),
    ("2-85-05-78-006-084-" + VALID[13:], True, False, "dashes (stdnum removes only spaces and dots)"),
    ("2\t85\u00a005 78 006 084 " + VALID[13:], True, False, "tab and no-break space"),
]


@pytest.mark.parametrize("typed, ours, theirs, why", CORPUS, ids=[c[3] for c in CORPUS])
def test_corpus_against_stdnum(typed, ours, theirs, why):
    assert nir.is_valid(typed) is ours
    assert stdnum_nir.is_valid(typed) is theirs
    if ours:
        assert nir.validate(typed) == stdnum_nir.compact(nir.normalize(typed))
        assert stdnum_nir.is_valid(nir.normalize(typed))     # once normalised, stdnum agrees with every accepted NIR


@given(body=bodies())
def test_key_is_stdnums(body):
    assert nir.with_key(body)[13:] == stdnum_nir.calc_check_digits(body)


@given(st.text(alphabet="0123456789AB", min_size=15, max_size=15))
def test_stdnum_and_the_project_differ_only_by_the_sex_and_month_rules(candidate):
    month = int(candidate[3:5]) if candidate[3:5].isdigit() else -1
    project_rules = candidate[0] in "123478" and (1 <= month <= 12 or 20 <= month <= 42 or month >= 50)
    assert nir.is_valid(candidate) == (stdnum_nir.is_valid(candidate) and project_rules)


@given(st.text(alphabet="0123456789", min_size=13, max_size=13), st.sampled_from(["", "2A", "2B"]))
def test_stdnum_and_the_project_differ_only_by_the_sex_and_month_rules_on_keyed_numbers(digits13, corsica):
    body = digits13[:5] + corsica + digits13[5 + len(corsica):] if corsica else digits13
    candidate = body + stdnum_nir.calc_check_digits(body)     # a right key: only the rules can refuse it
    assert stdnum_nir.is_valid(candidate)
    month = int(candidate[3:5])
    assert nir.is_valid(candidate) == (candidate[0] in "123478" and (1 <= month <= 12 or 20 <= month <= 42
                                                                     or month >= 50))
