"""The mailer (idp/mail.py): real SMTP, the console transport, templates, failures."""

from __future__ import annotations

import logging
import os
import stat
from email import policy
from email.parser import BytesParser

import pytest
from aiosmtpd.smtp import AuthResult
from jinja2 import ChoiceLoader, DictLoader

from conftest import free_port
from idp.mail import MailError, build_message, outbox_dir, render_mail, send_mail

pytest_plugins = ["smtp"]

TO = "jeanne.martin@exemple.fr"
SUBJECT = "Votre code de sécurité – compte ameli"
TEXT = "Bonjour Jeanne,\n\nVotre code de sécurité : 482913\n"
HTML = "<p>Bonjour Jeanne,</p><p>Votre code de sécurité : <strong>482913</strong></p>"


@pytest.fixture
def settings(smtp_server, tmp_path):
    return {**smtp_server.settings, "MAIL_OUTBOX_DIR": str(tmp_path / "outbox")}


@pytest.fixture
def mail_log(caplog, monkeypatch):
    """Capture idp.mail's INFO lines.

    Alembic's env.py calls logging.config.fileConfig() without
    disable_existing_loggers=False, which disables every logger created before a
    migration ran (the session fixture runs one): re-enable ours for the test.
    """
    monkeypatch.setattr(logging.getLogger("idp.mail"), "disabled", False)
    caplog.set_level(logging.INFO, logger="idp.mail")
    return caplog


# --- SMTP -------------------------------------------------------------------------------

def test_smtp_send_and_read_back(app, smtp_server):
    sent = send_mail(TO, SUBJECT, TEXT, HTML)
    mail = smtp_server.wait_for(TO)

    assert mail["Subject"] == SUBJECT
    assert b"=?utf-8?" in mail.raw.split(b"\r\n\r\n", 1)[0].lower()  # encoded, not raw 8-bit
    assert mail["From"] == app.config["IDP_MAIL_FROM"]
    assert mail.envelope_from == "ne-pas-repondre@idp.invalid"
    assert mail.envelope_to == [TO]
    assert mail["To"] == TO
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert "482913" in mail.text_body()
    assert "<strong>482913</strong>" in mail.html_body()
    assert mail["Message-ID"] == sent["Message-ID"]
    assert mail["Message-ID"].endswith("@idp.invalid>")
    assert mail["Date"].datetime is not None
    assert mail["Auto-Submitted"] == "auto-generated"


def test_text_only_mail(app, smtp_server):
    send_mail(TO, "Sans HTML", "Texte seul, accentué : é à ç\n")
    mail = smtp_server.wait_for(TO)
    assert mail.get_content_type() == "text/plain"
    assert mail.text_body() == "Texte seul, accentué : é à ç\n"
    assert mail.html_body() is None


def test_wait_for_returns_the_latest(app, smtp_server):
    send_mail(TO, "Premier", "1\n")
    send_mail("autre@exemple.fr", "Autre", "x\n")
    send_mail(TO, "Second", "2\n")
    assert smtp_server.wait_for(TO, after=1)["Subject"] == "Second"
    assert [m["Subject"] for m in smtp_server.to(TO)] == ["Premier", "Second"]


def test_unreachable_smtp_raises_mail_error(app):
    app.config["IDP_MAIL_URL"] = f"smtp://127.0.0.1:{free_port()}?timeout=2"
    with pytest.raises(MailError) as caught:
        send_mail(TO, SUBJECT, TEXT, HTML)
    assert "127.0.0.1" in str(caught.value)
    assert "Réessayez" in caught.value.user_message


def test_starttls_required_but_not_offered_raises(app, smtp_server):
    app.config["IDP_MAIL_URL"] = smtp_server.url + "&starttls=1"
    with pytest.raises(MailError):
        send_mail(TO, SUBJECT, TEXT)
    assert smtp_server.messages == []  # never sent in clear when TLS was asked for


@pytest.fixture
def auth_smtp_server(make_smtp_server):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"idp" and auth_data.password == b"s3cr&t=/"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    return make_smtp_server(authenticator=authenticator, auth_require_tls=False)


def test_smtp_login(app, auth_smtp_server):
    base = f"smtp://127.0.0.1:{auth_smtp_server.port}"
    app.config["IDP_MAIL_URL"] = f"{base}?username=idp&password=s3cr%26t%3D%2F&timeout=5"
    send_mail(TO, SUBJECT, TEXT)
    assert auth_smtp_server.wait_for(TO)["Subject"] == SUBJECT

    app.config["IDP_MAIL_URL"] = f"smtp://idp:s3cr%26t%3D%2F@127.0.0.1:{auth_smtp_server.port}?timeout=5"
    send_mail(TO, "Deuxième", TEXT)
    assert auth_smtp_server.wait_for(TO, after=1)["Subject"] == "Deuxième"

    for wrong in ("faux", "%C3%A9t%C3%A9"):  # smtplib cannot send non-ASCII credentials: a MailError too
        app.config["IDP_MAIL_URL"] = f"{base}?username=idp&password={wrong}&timeout=5"
        with pytest.raises(MailError) as caught:
            send_mail(TO, SUBJECT, TEXT)
        assert "faux" not in str(caught.value)
    assert len(auth_smtp_server.messages) == 2


def test_a_thread_keeps_its_connection_and_replaces_one_the_server_closed(app):
    """One SMTP connection per thread for IDP_MAIL_KEEP_ALIVE seconds; a server restarted
    meanwhile costs nothing: the mail goes on a new connection; a server down is a MailError."""
    from idp import mail as mailer
    from smtp import SMTPServer

    server = SMTPServer().start()
    running = [server]
    try:
        app.config["IDP_MAIL_URL"] = server.url
        send_mail(TO, "Premier", TEXT)
        kept = mailer._kept.connection[1]
        send_mail(TO, "Deuxième", TEXT)
        assert mailer._kept.connection[1] is kept  # no new connection, greeting or QUIT
        assert [m["Subject"] for m in server.to(TO)] == ["Premier", "Deuxième"]

        running.pop().stop()
        with pytest.raises(MailError):
            send_mail(TO, "Pendant la panne", TEXT)
        assert getattr(mailer._kept, "connection", None) is None
        running.append(SMTPServer(port=server.port).start())
        send_mail(TO, "Après", TEXT)
        assert [m["Subject"] for m in running[-1].to(TO)] == ["Après"]

        # The server restarts between two mails: the kept connection is dead, the mail still leaves.
        kept = mailer._kept.connection[1]
        running.pop().stop()
        running.append(SMTPServer(port=server.port).start())
        send_mail(TO, "Après le redémarrage", TEXT)
        assert [m["Subject"] for m in running[-1].to(TO)] == ["Après le redémarrage"]
        assert mailer._kept.connection[1] is not kept

        app.config["IDP_MAIL_KEEP_ALIVE"] = 0  # one connection per mail
        send_mail(TO, "Sans connexion gardée", TEXT)
        assert getattr(mailer._kept, "connection", None) is None
        assert running[-1].wait_for(TO, after=1)["Subject"] == "Sans connexion gardée"
    finally:
        for still in running:
            still.stop()


def test_a_kept_connection_dropped_silently_is_replaced_within_the_probe_timeout(app, smtp_server):
    """A firewall that dropped the idle connection without a word: NOOP gets no answer, the
    connection is replaced after PROBE_TIMEOUT (not the 10 s SMTP timeout), the mail leaves once."""
    import smtplib
    import socket
    import time

    from idp import mail as mailer

    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        dead = smtplib.SMTP()
        dead.sock = socket.create_connection(silent.getsockname(), timeout=10)
        dead.file = None
        app.config["IDP_MAIL_URL"] = smtp_server.url
        mailer._kept.connection = (smtp_server.url, dead, time.monotonic())
        started = time.monotonic()
        send_mail(TO, "Après la coupure", TEXT)
        waited = time.monotonic() - started
        assert waited < mailer.PROBE_TIMEOUT + 2, waited
        assert [m["Subject"] for m in smtp_server.to(TO)] == ["Après la coupure"]
        assert mailer._kept.connection[1] is not dead
    finally:
        silent.close()


def test_html_and_text_lines_end_in_crlf_whatever_the_values_hold(app, smtp_server):
    """A CR in a value (a name from the database) never reaches the wire alone: servers that guard
    against SMTP smuggling refuse bare CR and LF."""
    send_mail(TO, SUBJECT, "Bonjour Jeanne\r\nMartin\rfin\n", "<p>Jeanne\rMartin</p>\r\n<p>fin</p>\n")
    raw = smtp_server.wait_for(TO).raw
    assert b"\r\r" not in raw
    assert raw.replace(b"\r\n", b"").count(b"\r") == 0 and raw.replace(b"\r\n", b"").count(b"\n") == 0


def test_composed_message_is_seven_bit_and_reads_back(app, smtp_server):
    long_line = "é" * 120
    send_mail(TO, SUBJECT, f"{long_line}\n.\nfin \n", f"<p>{long_line}</p>\n")
    mail = smtp_server.wait_for(TO)
    assert max(len(line) for line in mail.raw.split(b"\r\n")) <= 78 and mail.raw.isascii()
    assert mail.text_body() == f"{long_line}\n.\nfin \n"
    assert mail.html_body() == f"<p>{long_line}</p>\n"


def test_unknown_scheme_raises_mail_error(app):
    app.config["IDP_MAIL_URL"] = "sendmail:///usr/sbin/sendmail"
    with pytest.raises(MailError):
        send_mail(TO, SUBJECT, TEXT)


@pytest.mark.parametrize("to", ["", "personne", "a@b.fr\r\nBcc: x@y.fr"])
def test_bad_recipient_is_refused(app, to):
    with pytest.raises(ValueError):
        build_message(to, SUBJECT, TEXT)


# --- console transport ------------------------------------------------------------------

def test_console_transport_keeps_the_mail_and_logs_no_body(app, mail_log):
    app.config["IDP_MAIL_URL"] = "console://"
    send_mail(TO, SUBJECT, TEXT, HTML)

    files = sorted(outbox_dir().iterdir())
    assert len(files) == 1 and files[0].suffix == ".eml"
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    mail = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    assert mail["Subject"] == SUBJECT and mail["To"] == TO
    assert mail.get_content_type() == "multipart/alternative"
    assert "482913" in mail.get_body(("plain",)).get_content()

    lines = [r.getMessage() for r in mail_log.records if r.name == "idp.mail"]
    assert len(lines) == 1
    assert TO in lines[0] and SUBJECT in lines[0] and "\n" not in lines[0]
    assert "482913" not in mail_log.text and "Bonjour" not in mail_log.text


def test_console_file_names_sort_by_time(app):
    app.config["IDP_MAIL_URL"] = "console://"
    for n in range(5):
        send_mail(TO, f"Courriel {n}", "x\n")
    names = sorted(p.name for p in outbox_dir().iterdir())
    subjects = [BytesParser(policy=policy.default).parsebytes((outbox_dir() / n).read_bytes())["Subject"]
                for n in names]
    assert subjects == [f"Courriel {n}" for n in range(5)]


def test_console_outbox_unwritable_raises_mail_error(app, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    app.config.update(IDP_MAIL_URL="console://", IDP_MAIL_OUTBOX_DIR=str(blocker / "outbox"))
    with pytest.raises(MailError):
        send_mail(TO, SUBJECT, TEXT)


# --- templates --------------------------------------------------------------------------

TEMPLATES = {
    "mail/essai.txt": (
        '{% extends "mail/base.txt" %}\n'
        "{% block subject %}\n  Votre code pour {{ user }}  – compte ameli\n{% endblock %}\n"
        "{% block body %}Bonjour {{ user }},\n\n\n\nVotre code : {{ code }}{% endblock %}\n"
    ),
    "mail/essai.html": (
        '{% extends "mail/base.html" %}\n'
        "{% block body %}<p>Bonjour {{ user }},</p><p>Votre code : <strong>{{ code }}</strong></p>{% endblock %}\n"
    ),
    "mail/texte_seul.txt": '{% extends "mail/base.txt" %}{% block subject %}Texte seul{% endblock %}'
                           "{% block body %}Lien : {{ issuer }}/x{% endblock %}",
    "mail/sans_objet.txt": '{% extends "mail/base.txt" %}{% block body %}Rien{% endblock %}',
}


@pytest.fixture
def mail_templates(app):
    app.jinja_env.loader = ChoiceLoader([DictLoader(TEMPLATES), app.jinja_env.loader])
    app.jinja_env.cache.clear()


def test_render_mail(app, mail_templates):
    subject, text, html = render_mail("essai", user="Léa <b>", code="123456")
    assert subject == "Votre code pour Léa <b> – compte ameli"
    assert "123456" not in subject
    assert text.startswith("Bonjour Léa <b>,\n\nVotre code : 123456\n")  # text: no escaping, blank lines tidied
    assert "merci de ne pas y répondre" in text
    assert "\n\n\n" not in text
    assert "<title>Votre code pour Léa &lt;b&gt; – compte ameli</title>" in html  # HTML: escaped
    assert "Bonjour Léa &lt;b&gt;," in html and "<strong>123456</strong>" in html


def test_render_and_send(app, mail_templates, smtp_server):
    send_mail(TO, *render_mail("essai", user="Jeanne", code="654321"))
    mail = smtp_server.wait_for(TO)
    assert mail["Subject"] == "Votre code pour Jeanne – compte ameli"
    assert "654321" in mail.text_body() and "654321" in mail.html_body()


def test_render_mail_text_only_and_issuer(app, mail_templates):
    subject, text, html = render_mail("texte_seul")
    assert subject == "Texte seul" and html is None
    assert f"Lien : {app.config['IDP_ISSUER']}/x" in text


def test_render_mail_needs_a_subject(app, mail_templates):
    with pytest.raises(LookupError):
        render_mail("sans_objet")
