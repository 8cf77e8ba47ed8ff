"""The form macros of templates/_forms.html write the tags WTForms would render.

They write ``<input>`` and ``<label>`` from the field's values instead of calling
WTForms' widgets (most of the CPU of a login page went there). These tests render
each field of the login and forgotten-password forms both ways, empty, filled in
and with errors, and compare the tags attribute by attribute, in order: a new
validator flag (``minlength``...) or field type the macros do not know shows here.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from werkzeug.datastructures import MultiDict

from conftest import FAST_ARGON2, KEY_SECRET, SECRET_KEY
from idp import create_app
from idp.login.forms import CodeForm, PasswordForm
from idp.recovery.forms import IdentityForm, NewPasswordForm


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app({"DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('db') / 'unused.sqlite3'}",
                       "TESTING": True, "KEY_SECRET": KEY_SECRET, "SECRET_KEY": SECRET_KEY,
                       "MAIL_URL": "console://", **FAST_ARGON2})


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def tags(html: str) -> tuple[list, list]:
    parser = _Tags()
    parser.feed(str(html))
    return parser.tags, parser.text


def render(app, source: str, **context) -> str:
    return app.jinja_env.from_string('{% from "_forms.html" import csrf, field, input %}' + source).render(**context)


def wtforms_attrs(f, hint, autocomplete, inputmode, autofocus) -> dict:
    """The keyword arguments the macro ``field`` used to hand to WTForms."""
    described = ([f"{f.id}-aide"] if hint else []) + ([f"{f.id}-erreur"] if f.errors else [])
    attrs = {"class": "input"}
    if autocomplete:
        attrs["autocomplete"] = autocomplete
    if inputmode:
        attrs["inputmode"] = inputmode
    if described:
        attrs["aria-describedby"] = " ".join(described)
    if f.errors:
        attrs["aria-invalid"] = "true"
    if autofocus:
        attrs["autofocus"] = True
    return attrs


SUBMISSIONS = [
    None,  # the page shown by a GET
    {"nir": "", "password": "", "code": "", "birth_date": "", "confirm": ""},  # every field missing
    {"nir": '1 85 05 78 "<x>" & é', "password": "secret", "code": "12 34", "remember": "y",
     "birth_date": "12/05/1985", "confirm": "other"},  # typed values, some wrong, with characters to escape
    {"nir": "x" * 40, "code": "123456", "remember": "on", "birth_date": "9" * 40},  # too long
]


@pytest.mark.parametrize("form_class", [PasswordForm, CodeForm, IdentityForm, NewPasswordForm])
@pytest.mark.parametrize("submitted", SUBMISSIONS)
@pytest.mark.parametrize("options", [
    {"hint": None, "autocomplete": None, "inputmode": None, "autofocus": False},
    {"hint": "Une aide « utile ».", "autocomplete": "username", "inputmode": "numeric", "autofocus": True},
])
def test_field_macro_renders_the_tags_of_wtforms(app, form_class, submitted, options):
    with app.test_request_context("/", method="POST" if submitted else "GET", data=submitted):
        form = form_class(formdata=MultiDict(submitted) if submitted else None, meta={"csrf": False})
        if submitted:
            form.validate()
        for f in form:
            if f.type in ("StringField", "PasswordField"):
                ours = tags(render(app, "{{ field(f, **options) }}", f=f, options=options))
                label = f.label(class_="label")
                error = [f.errors[0]] if f.errors else []
                hint = [options["hint"]] if options["hint"] else []
                theirs_input = f(**wtforms_attrs(f, **options))
                assert ours[0][0] == ("div", [("class", "field field--error" if f.errors else "field")])
                assert ours[0][1] == tags(label)[0][0]
                assert ours[0][-1] == tags(theirs_input)[0][0], f.name
                assert ours[1] == tags(label)[1] + hint + error
            elif f.type == "BooleanField":
                ours = render(app, "{{ input(f, describedby='remember-aide') }}", f=f)
                assert tags(ours) == tags(f(**{"aria-describedby": "remember-aide"}))
            elif f.type == "HiddenField":
                assert tags(render(app, "{{ input(f) }}", f=f)) == tags(f())


def test_csrf_macro_renders_the_token_field_of_flask_wtf(app):
    with app.test_request_context("/"):
        form = PasswordForm()
        ours = render(app, "{{ csrf(form) }}", form=form)
        assert tags(ours) == tags(form.csrf_token())
        assert 'name="csrf_token" type="hidden" value="' in ours
