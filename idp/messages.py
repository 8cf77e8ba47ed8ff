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
    # Second factor without the mailbox (issue 12): the authenticator app and recovery codes
    "app_code_required": "Saisissez le code à 6 chiffres affiché par votre application d'authentification.",
    "app_code_format": "Le code de l'application comporte exactement 6 chiffres.",
    "recovery_code_required": "Saisissez l'un de vos codes de secours.",
    "recovery_code_format": "Un code de secours comporte 12 caractères (lettres et chiffres), "
                            "par exemple ABCD-EFGH-JKMN.",
    # Forgotten password, step 2: identity and CAPTCHA
    "birth_date_required": "Saisissez votre date de naissance.",
    "birth_date_format": "Saisissez la date de naissance au format JJ/MM/AAAA ou JJMMAAAA, par exemple "
                         "12/05/1985 ou 12051985.",
    "birth_date_impossible": "Cette date n'existe pas : vérifiez le jour (JJ, de 01 à 31 selon le mois) "
                             "et le mois (MM, de 01 à 12), par exemple 12/05/1985.",
    "birth_date_future": "La date de naissance ne peut pas être dans le futur : vérifiez l'année (AAAA).",
    "birth_date_too_old": "La date de naissance ne peut pas être avant {oldest} : vérifiez l'année (AAAA).",
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
    # Security space « Mon compte – Sécurité » (idp/account/)
    "current_password_required": "Saisissez votre mot de passe actuel.",
    "current_password_wrong": "Le mot de passe actuel est incorrect. Vérifiez votre saisie et réessayez.",
    "new_password_same": "Le nouveau mot de passe doit être différent du mot de passe actuel.",
    "new_email_required": "Saisissez votre nouvelle adresse mail.",
    "new_email_invalid": "L'adresse mail doit être de la forme nom@exemple.fr, sans espace.",
    "new_email_same": "Cette adresse mail est déjà celle de votre compte.",
    # Security space: enrolling the authenticator app (idp/account/second_factor.py)
    "app_enrol_code_wrong": "Ce code est incorrect. Saisissez le code à 6 chiffres affiché en ce moment par "
                            "l'application (il change toutes les 30 secondes) ; vérifiez aussi que votre téléphone "
                            "est à l'heure.",
    # CSRF and expired forms
    "csrf": "Ce formulaire a expiré. Rechargez la page et recommencez.",
    "csrf_recovery": "Ce formulaire a expiré : vérifiez les informations ci-dessous, recopiez la nouvelle série "
                     "de caractères et envoyez-le de nouveau.",
    # The database is unavailable (idp/errors.py): 503 « Service momentanément indisponible »
    "unavailable_title": "Service momentanément indisponible",
    "unavailable": "Le service est momentanément indisponible. Votre demande n'a pas pu être traitée : "
                   "rien n'a été enregistré ni modifié, et aucune de vos informations n'est perdue.",
    "unavailable_retry": "Réessayez dans quelques minutes. Si le problème persiste, appelez le 3646.",
}


def msg(key: str) -> str:
    return MESSAGES[key]
