"""Every number of the policy is a setting, documented, with the seeds' value as default."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp import config

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()

SEED_DEFAULTS = {
    # ameli-login-journey
    "CODE_LIFETIME": 15 * 60,            # « saisi dans les 15 minutes » (case 2)
    "CODE_QUOTA_BLOCK": 60 * 60,         # « bloqué une heure » (case 3)
    "MAX_CODE_FAILURES": 3,              # « 3 erreurs de saisie pour le code » (case 5)
    "MAX_PASSWORD_FAILURES": 3,          # « 3 erreurs de saisie pour le mot de passe » (case 6)
    "TRUSTED_DEVICE_LIFETIME": 180 * 24 * 3600,  # « pendant 6 mois »
    # ameli-forgot-password
    "CAPTCHA_LIFETIME": 5 * 60,          # « 5 minutes pour lire ou écouter le code »
    "RESET_LINK_LIFETIME": 30 * 60,      # « valable pour une durée de 30 minutes »
    "PASSWORD_MIN_LENGTH": 8,            # « entre 8 à 50 caractères »
    "PASSWORD_MAX_LENGTH": 50,
    # OWASP Argon2id
    "ARGON2_MEMORY_COST": 19 * 1024,
    "ARGON2_TIME_COST": 2,
    "ARGON2_PARALLELISM": 1,
}


@pytest.mark.parametrize("name, value", sorted(SEED_DEFAULTS.items()))
def test_seed_numbers_are_the_defaults(name, value):
    assert config.BY_NAME[name].default == value


@pytest.mark.parametrize("setting", config.SETTINGS, ids=lambda s: s.env)
def test_every_setting_is_in_the_readme(setting):
    assert f"| `{setting.env}` |" in README


def test_environment_variables_override_defaults(monkeypatch):
    monkeypatch.setenv("IDP_CODE_LIFETIME", "120")
    monkeypatch.setenv("IDP_TESTING", "yes")
    values = config.load({"DATABASE_URL": "sqlite://", "SECRET_KEY": "k" * 32})
    assert values["IDP_CODE_LIFETIME"] == 120 and values["IDP_TESTING"] is True


def test_idp_settings_lists_every_setting(app):
    output = app.test_cli_runner().invoke(args=["settings"]).output
    for setting in config.SETTINGS:
        assert setting.env in output
