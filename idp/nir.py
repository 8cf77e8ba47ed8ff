"""The NIR (numéro d'inscription au répertoire), the French social-security number.

15 characters: 13 for the person, 2 for the control key. The key is
``97 - (number mod 97)``, where for people born in Corsica the department
``2A`` counts as ``19`` and ``2B`` as ``18``. People type it with spaces or dots;
we store it normalised (no separators, upper-case).
"""

from __future__ import annotations

import re

_NIR_RE = re.compile(r"^[1-478]\d{4}(?:\d{2}|2A|2B)\d{6}\d{2}$")
_SEPARATORS = re.compile(r"[\s.\-]")


class InvalidNIR(ValueError):
    pass


def normalize(raw: str) -> str:
    return _SEPARATORS.sub("", raw or "").upper()


def control_key(first13: str) -> int:
    numeric = first13.replace("2A", "19", 1) if first13[5:7] == "2A" else first13
    numeric = numeric.replace("2B", "18", 1) if first13[5:7] == "2B" else numeric
    return 97 - int(numeric) % 97


def is_valid(raw: str) -> bool:
    nir = normalize(raw)
    if len(nir) != 15 or not _NIR_RE.match(nir):
        return False
    month = int(nir[3:5])
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        return False
    return control_key(nir[:13]) == int(nir[13:])


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
