"""Catalogue of the health-insurance regimes whose members may use the compte ameli.

The general regime (code 01) and the partner regimes that delegate login to it.
The ``affiliation`` claim carries the code and the name from this catalogue.
"""

REGIMES: dict[str, str] = {
    "01": "Régime général",
    "02": "Mutualité sociale agricole (MSA)",
    "04": "Caisse de prévoyance et de retraite du personnel de la SNCF",
    "05": "Caisse de coordination aux assurances sociales de la RATP",
    "06": "Établissement national des invalides de la marine (ENIM)",
    "07": "Caisse autonome nationale de la sécurité sociale dans les mines (CANSSM)",
    "08": "Caisse nationale militaire de sécurité sociale (CNMSS)",
    "10": "Caisse de retraite et de prévoyance des clercs et employés de notaires (CRPCEN)",
    "14": "Régime de sécurité sociale de l'Assemblée nationale",
    "15": "Régime de sécurité sociale du Sénat",
    "90": "Caisse d'assurance vieillesse, invalidité et maladie des cultes (CAVIMAC)",
}

DEFAULT_REGIME = "01"


def name(code: str | None) -> str | None:
    return REGIMES.get(code or "")
