"""The NIR (numéro d'inscription au répertoire), the French social-security number.

15 characters: 13 for the person, 2 for the control key. The key is
``97 - (number mod 97)``, where for people born in Corsica the department
``2A`` counts as ``19`` and ``2B`` as ``18``. People type it with spaces or dots;
we store it normalised (no separators, upper-case).

The format of the number (digits, ``2A``/``2B``, length) and its key come from
python-stdnum's ``stdnum.fr.nir``, the maintained validator; this module keeps only
what stdnum does not check and the project's rules need (tests/test_nir.py compares
the two on a corpus):

- the first digit is a sex code the NIR uses: 1, 2 (born in France), 3, 4
  (provisional, people born abroad), 7, 8 (temporary numbers); stdnum accepts any digit;
- the month is 01-12, or 20-42 and 50-99 (people registered without a known
  month of birth); stdnum accepts 00 and 13-19, 43-49;
- people also type tabs, no-break spaces and dashes between the groups; stdnum
  removes only spaces and dots.
"""

from __future__ import annotations

import re

from stdnum.exceptions import ValidationError
from stdnum.fr import nir as stdnum_nir

_SEX_AND_MONTH = re.compile(r"^[1-478]\d{2}(?:0[1-9]|1[0-2]|2\d|3\d|4[0-2]|[5-9]\d)")
_SEPARATORS = re.compile(r"[\s.\-]")


class InvalidNIR(ValueError):
    pass


def normalize(raw: str) -> str:
    return _SEPARATORS.sub("", raw or "").upper()


def control_key(first13: str) -> int:
    """The key of 13 characters (Corsica's 2A/2B counted as 19/18), by stdnum."""
    return int(stdnum_nir.calc_check_digits(first13))


def is_valid(raw: str) -> bool:
    nir = normalize(raw)
    if not _SEX_AND_MONTH.match(nir):
        return False
    try:
        stdnum_nir.validate(nir)
    except ValidationError:
        return False
    return True


def validate(raw: str) -> str:
    """Return the normalised NIR, or raise :class:`InvalidNIR`."""
    nir = normalize(raw)
    if not is_valid(nir):
        raise InvalidNIR("Numéro de sécurité sociale invalide : 15 caractères, clé de contrôle comprise.")
    return nir


def with_key(first13: str) -> str:
    """Complete 13 characters with their control key (for demo and test data)."""
    first13 = normalize(first13)
    return f"{first13}{control_key(first13):02d}"
