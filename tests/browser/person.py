"""A person at the keyboard: fills the login pages in Chromium, reads their mail."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from conftest import CODE_RE, PASSWORD


_DAYS = "lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche"
_MONTHS = "janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre"
#: « le mardi 24 novembre 2026 à 11 h 05 », « le mardi 1er décembre … » (idp.timefmt.paris)
PARIS_DATE = re.compile(rf"le ({_DAYS}) (1er|\d{{1,2}}) ({_MONTHS}) \d{{4}} à \d{{1,2}} h \d{{2}}")


class Person:
    def __init__(self, page: Page, mailbox, user, password: str = PASSWORD):
        self.page = page
        self.mailbox = mailbox
        self.user = user
        self.password = password

    # --- where we are -------------------------------------------------------------

    def step(self, name: str):
        """The card of a step (``data-step``), waited for."""
        card = self.page.locator(f"[data-step='{name}']")
        expect(card).to_be_visible()
        return card

    def heading(self, text: str | re.Pattern):
        expect(self.page.get_by_role("heading", level=1)).to_have_text(text)

    # --- steps ------------------------------------------------------------------------

    def open(self, url: str) -> None:
        self.page.goto(url)

    def submit(self, button: str) -> None:
        """Click a button that sends a form, and wait for the page it leads to."""
        with self.page.expect_navigation():
            self.page.get_by_role("button", name=button, exact=True).click()

    def give_password(self, password: str | None = None, nir: str | None = None) -> None:
        """Step 0: « Numéro de sécurité sociale », « Mot de passe », « Continuer »."""
        self.step("password")
        self.page.get_by_label("Numéro de sécurité sociale", exact=True).fill(nir or self.user.nir)
        self.page.get_by_label("Mot de passe", exact=True).fill(password or self.password)
        self.submit("Continuer")

    def mails(self) -> int:
        return len(self.mailbox.to(self.user.email))

    def request_code(self) -> str:
        """Step 1: « Recevoir un code de sécurité »; step 2: the code, read from the mailbox."""
        self.step("code-request")
        before = self.mails()
        self.submit("Recevoir un code de sécurité")
        return self.read_code(after=before)

    def read_code(self, after: int = 0) -> str:
        mail = self.mailbox.wait_for(self.user.email, after=after)
        match = CODE_RE.search(mail.text_body() or "")
        assert match, "no 6-digit code in the mail"
        return match.group(1)

    def enter_code(self, code: str, remember: bool = False) -> None:
        """Step 3: « Code de sécurité », « J'utilise mon ordinateur personnel », « Me connecter »."""
        self.step("code")
        self.page.get_by_label("Code de sécurité", exact=True).fill(code)
        if remember:
            self.page.get_by_label("J'utilise mon ordinateur personnel").check()
        self.submit("Me connecter")

    def callback(self, rp) -> str:
        """Back at the relying party: the URL of its callback, with the code (or the error)."""
        self.page.wait_for_url(re.compile("^" + re.escape(rp.redirect_uri) + r"\?"))
        expect(self.page.get_by_role("heading", level=1)).to_have_text("Retour sur le site partenaire")
        return self.page.url

    def log_in(self, rp, remember: bool = False, **params) -> str:
        """The whole journey with a code, from the relying party back to it; the callback URL."""
        self.open(rp.authorization_url(**params))
        self.give_password()
        self.enter_code(self.request_code(), remember=remember)
        return self.callback(rp)
