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
    # Forgotten password, step 2: identity and CAPTCHA
    "birth_date_required": "Saisissez votre date de naissance.",
    "birth_date_invalid": "La date de naissance doit être une date passée au format JJ/MM/AAAA, "
                          "par exemple 12/05/1985.",
    "captcha_required": "Recopiez les caractères de l'image, ou ceux entendus avec le bouton "
                        "« Écouter les caractères ».",
    "captcha_wrong": "Les caractères saisis ne correspondent pas à la série proposée. "
                     "Une nouvelle série vous est proposée : recopiez-la.",
    "captcha_expired": "La série de caractères n'est plus valable : elle dure {duration} et ne sert qu'une "
                       "fois. Recopiez la nouvelle série.",
    "captcha_new": "Une nouvelle série de caractères est affichée.",
    # Forgotten password, step 5: the rules of a new password (idp/recovery/password_policy.py)
    "password_rule_length": "Comporter entre {min} et {max} caractères",
    "password_rule_case": "Contenir des lettres latines minuscules et majuscules (de a à z et de A à Z)",
    "password_rule_digit_or_special": "Contenir un chiffre ou un caractère spécial",
    "password_rule_allowed": "Ne contenir que des caractères autorisés",
    "password_rule_nir": "Ne pas contenir votre numéro de sécurité sociale",
    "password_rule_birth_date": "Ne pas contenir votre date de naissance",
    "password_rules_broken": "Le nouveau mot de passe ne respecte pas ces règles :",
    "password_disallowed_characters": "Caractères non autorisés : {chars}.",
    "new_password_required": "Saisissez votre nouveau mot de passe.",
    "password_confirm_required": "Saisissez une seconde fois votre nouveau mot de passe.",
    "password_confirm_mismatch": "La confirmation est différente du nouveau mot de passe : "
                                 "saisissez deux fois le même mot de passe.",
    # CSRF and expired forms
    "csrf": "Ce formulaire a expiré. Rechargez la page et recommencez.",
    # The database is unavailable (idp/errors.py): 503 « Service momentanément indisponible »
    "unavailable_title": "Service momentanément indisponible",
    "unavailable": "Le service est momentanément indisponible. Votre demande n'a pas pu être traitée : "
                   "rien n'a été enregistré ni modifié, et aucune de vos informations n'est perdue.",
    "unavailable_retry": "Réessayez dans quelques minutes. Si le problème persiste, appelez le 3646.",
}


def msg(key: str) -> str:
    return MESSAGES[key]
