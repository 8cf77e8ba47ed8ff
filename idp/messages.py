"""The catalogue of French messages that Python code hands to templates.

Pages carry their own text; this file holds only what is decided in code
(form errors, outcomes), so that every user-facing sentence outside templates
is in one place, keyed by a stable name that tests can refer to.
"""

MESSAGES: dict[str, str] = {
    # Form fields
    "nir_required": "Saisissez votre numéro de sécurité sociale.",
    "nir_invalid": "Le numéro de sécurité sociale comporte 15 caractères : 13 chiffres (ou 2A/2B pour la Corse) "
                   "suivis d'une clé de 2 chiffres. Vérifiez votre saisie.",
    "password_required": "Saisissez votre mot de passe.",
    "field_too_long": "Ce champ est trop long.",
    # Login journey, case 4 (the same for an unknown NIR and a wrong password)
    "case4_wrong_credentials": "Numéro de sécurité sociale ou mot de passe incorrect. "
                               "Vérifiez les informations saisies et réessayez.",
    # Security code (steps 1-3)
    "code_required": "Saisissez le code de sécurité à 6 chiffres reçu par mail.",
    "code_format": "Le code de sécurité comporte exactement 6 chiffres.",
    # CSRF and expired forms
    "csrf": "Ce formulaire a expiré. Rechargez la page et recommencez.",
}


def msg(key: str) -> str:
    return MESSAGES[key]
