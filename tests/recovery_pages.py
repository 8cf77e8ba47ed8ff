"""Helpers for the forgotten-password tests: one person's browser going through ``/mot-de-passe-oublie``.

Over real HTTP (``live_server``) with the test's ``browser``; mails are read from
the real SMTP server of the tests (``mailbox``). The CAPTCHA answer is fixed by
``CAPTCHA_TEST_ANSWER`` (a test setting) unless a test reads the real series.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest

from conftest import csrf_token

ANSWER = "HX7K4M"
BORN = "12/05/1985"   # make_user's birth date
NEW_PASSWORD = "Nouveau-Depart-2025"
START = "/mot-de-passe-oublie"
SENT = "/mot-de-passe-oublie/mail-envoye"
BLOCKED = "/mot-de-passe-oublie/demandes-bloquees"  # case 2
RESET_SUBJECT = "Votre compte ameli – renouveler mon mot de passe"
CHANGED_SUBJECT = "Votre compte ameli – votre mot de passe a été modifié"
LINK_RE = re.compile(r"(https?://[^\s\"<>#]+/mot-de-passe-oublie/nouveau#[A-Za-z0-9_-]+)")
HANDLE_RE = re.compile(r'name="captcha_handle" type="hidden" value="([^"]*)"')
PASSWORD_PAGE = "/mot-de-passe-oublie/nouveau/mot-de-passe"


def handle_of(html: str) -> str:
    match = HANDLE_RE.search(html)
    assert match, "no CAPTCHA on the page"
    return match.group(1)


def followed(browser, posted):
    """Post/Redirect/Get: every POST of the journey answers 303 to a GET; the page that GET shows,
    with the POST's answer as ``.posted``."""
    assert posted.status_code == 303, (posted.status_code, posted.text[:400])
    location = posted.headers["Location"]
    page = browser.get(urljoin(posted.url, location), allow_redirects=False, timeout=10)
    page.posted = posted
    return page


class Recovery:
    """The forgotten-password pages, seen by one browser."""

    def __init__(self, url: str, browser, mailbox):
        self.url = url
        self.browser = browser
        self.mailbox = mailbox
        self.page = None  # the last step 2 page (its CSRF token and CAPTCHA)

    def start(self):
        self.page = self.browser.get(self.url + START, timeout=10)
        assert self.page.status_code == 200, self.page.text[:300]
        return self.page

    @property
    def handle(self) -> str:
        return handle_of(self.page.text)

    def ask(self, nir: str, birth_date: str = BORN, answer: str | None = ANSWER, handle: str | None = None,
            **extra):
        """Step 2: « Recevoir le mail » with what is given: the page its 303 leads to (kept if it is step 2)."""
        if self.page is None:
            self.start()
        data = {"nir": nir, "birth_date": birth_date, "captcha_handle": handle or self.handle, **extra}
        if answer is not None:
            data["captcha"] = answer
        r = followed(self.browser, self.browser.submit(self.url + START, self.page.text, data, timeout=10))
        if HANDLE_RE.search(r.text or ""):
            self.page = r
        return r

    def new_series(self):
        r = followed(self.browser, self.browser.submit(
            self.url + START, self.page.text,
            {"action": "new-captcha", "captcha_handle": self.handle, "nir": "", "birth_date": ""}))
        self.page = r
        return r

    def link(self, email: str, after: int = 0) -> str:
        mail = self.mailbox.wait_for(email, after=after)
        assert mail["Subject"] == RESET_SUBJECT
        match = LINK_RE.search(mail.text_body())
        assert match, "no reset link in the mail"
        return match.group(1)

    def request_link(self, user, **kw) -> str:
        before = len(self.mailbox.to(user.email))
        r = self.ask(user.nir, **kw)
        assert r.posted.headers["Location"] == SENT and r.status_code == 200, (r.status_code, r.text[:400])
        return self.link(user.email, after=before)

    def open(self, link: str):
        """What a browser does with the link: GET the page (the fragment is never sent), whose script
        posts the fragment's token (``action=open``); returns the page its 303 leads to (step 5)."""
        page_url, token = split_link(link)
        landing = self.browser.get(page_url, timeout=10)
        assert landing.status_code == 200 and 'data-mail-link' in landing.text, landing.text[:300]
        return followed(self.browser, self.browser.post(
            page_url, data={"csrf_token": csrf_token(landing.text), "action": "open", "token": token},
            allow_redirects=False, timeout=10))

    def post_password(self, page, **data):
        """Step 5's form, posted from ``page`` with ``data``: the page its 303 leads to."""
        return followed(self.browser, self.browser.post(
            self.url + "/mot-de-passe-oublie/nouveau", data={"csrf_token": csrf_token(page.text), **data},
            allow_redirects=False, timeout=10))

    def set_password(self, link: str, password: str = NEW_PASSWORD, confirm: str | None = None, page=None):
        """Step 5 for the link this browser opened (``page``, or ``link`` opened now); the page that follows."""
        page = page or self.open(link)
        return self.post_password(page, password=password, confirm=password if confirm is None else confirm)


def split_link(link: str) -> tuple[str, str]:
    """``https://…/mot-de-passe-oublie/nouveau#TOKEN`` → (the page's URL, the token)."""
    page_url, _, token = link.partition("#")
    return page_url, token


@pytest.fixture
def recovery(live_server, browser, mailbox) -> Recovery:
    return Recovery(live_server.url, browser, mailbox)


@pytest.fixture
def new_recovery(live_server, new_browser, mailbox):
    def _new() -> Recovery:
        return Recovery(live_server.url, new_browser(), mailbox)

    return _new
