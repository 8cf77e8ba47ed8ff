"""French dates, times and durations (idp.timefmt, Babel/CLDR): every value of a lifetime setting reads right.

The issue: « 1 minutes », « dans les 1 minute » were possible with the hand-written plurals. The pages, the
mails and the messages now say a lifetime through ``duration`` (filter ``|duration``), from the setting itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from idp.timefmt import duration, paris, paris_time, to_paris, within
from login_pages import page_text


@pytest.mark.parametrize("seconds, words", [
    (60, "1 minute"),
    (120, "2 minutes"),
    (300, "5 minutes"),
    (900, "15 minutes"),
    (1800, "30 minutes"),
    (3600, "1 heure"),
    (5400, "90 minutes"),          # exact, never rounded to « 2 heures »
    (7200, "2 heures"),
    (86400, "1 jour"),
    (604800, "1 semaine"),
    (15552000, "6 mois"),          # TRUSTED_DEVICE_LIFETIME's default: 180 days
    (2592000, "1 mois"),
    (31536000, "1 an"),
    (30, "30 secondes"),
    (1, "1 seconde"),
    (61, "61 secondes"),
])
def test_duration_is_exact_and_plural_correct(seconds, words):
    said = duration(seconds)
    assert " ".join(said.split()) == words   # CLDR may put a no-break space between number and unit
    assert duration(timedelta(seconds=seconds)) == said


@pytest.mark.parametrize("seconds, words", [
    (900, "dans les 15 minutes"),   # the seed's case 2
    (120, "dans les 2 minutes"),
    (60, "dans un délai de 1 minute"),
    (3600, "dans un délai de 1 heure"),
    (7200, "dans les 2 heures"),
])
def test_within(seconds, words):
    assert " ".join(within(seconds).split()) == words


def test_paris_dates_and_times():
    assert paris(datetime(2026, 1, 15, 10, 5)) == "le jeudi 15 janvier 2026 à 11 h 05"     # winter: UTC+1
    assert paris(datetime(2026, 7, 15, 10, 5)) == "le mercredi 15 juillet 2026 à 12 h 05"  # summer: UTC+2
    assert paris(datetime(2026, 12, 1, 8, 0)) == "le mardi 1er décembre 2026 à 9 h 00"     # ordinal first day
    assert paris(datetime(2026, 2, 28, 23, 30)) == "le dimanche 1er mars 2026 à 0 h 30"    # the day turns in Paris
    assert paris_time(datetime(2026, 3, 29, 1, 0)) == "3 h 00"                             # the night summer starts
    assert paris(None) == "" and paris_time(None) == ""
    assert to_paris(datetime(2026, 1, 15, 10, 5)).utcoffset() == timedelta(hours=1)


LIFETIMES = [60, 120, 900, 3600, 5400]


@pytest.mark.parametrize("settings", [{"RESET_LINK_LIFETIME": s, "CAPTCHA_LIFETIME": s, "CODE_LIFETIME": s}
                                      for s in LIFETIMES], ids=[f"{s}s" for s in LIFETIMES])
def test_pages_say_each_lifetime_in_correct_french(web, settings):
    words = " ".join(duration(settings["CODE_LIFETIME"]).split())
    pages = {
        "/connexion/aide": f"Un code est valable {words}.",
        "/mot-de-passe-oublie": f"Cette série est valable {words}.",
        "/mot-de-passe-oublie/mail-envoye": f"Le lien est valable {words} et ne sert qu'une fois.",
        "/mot-de-passe-oublie/aide": f"Le lien est valable {words} et ne sert qu'une fois.",
    }
    for url, sentence in pages.items():
        r = web.get(url)
        assert r.status_code == 200, url
        text = page_text(r.get_data(as_text=True))
        assert sentence in text, (url, text)
        assert "1 minutes" not in text and "dans les 1" not in text


def test_trusted_device_months_come_from_the_setting(web, app):
    assert "moins de 6 mois ?" in page_text(web.get("/connexion/aide").get_data(as_text=True))
    app.config["IDP_TRUSTED_DEVICE_LIFETIME"] = 30 * 86400
    assert "moins de 1 mois ?" in page_text(web.get("/connexion/aide").get_data(as_text=True))


@pytest.mark.parametrize("settings", [{"CODE_LIFETIME": 60}], ids=["1-minute"])
def test_one_minute_code_on_the_login_pages_and_in_the_mail(journey, user, mailbox, settings):
    journey.start()
    page = journey.password(user)
    assert "Le code est valable 1 minute." in page_text(page.text)
    page = journey.request_code()
    assert "Il est valable 1 minute, jusqu'à" in page_text(page.text)  # « … 9 h 14 (heure de Paris) »
    assert "pendant 6 mois." in page_text(page.text)                 # trusted device (step 3 checkbox)
    body = mailbox.wait_for(user.email).text_body()
    assert "Il est valable 1 minute, jusqu'à" in " ".join(body.split())
