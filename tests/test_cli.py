"""The administrator command line: ``idp users``, ``idp clients``, ``idp keys``."""

from __future__ import annotations

import datetime as dt
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from conftest import make_nir
from idp import crypto, nir
from idp.extensions import db
from idp.models import AuthorizationCode, Client, Grant, LoginFlow, SigningKey, Token, User, utcnow

PW = "Un-mot-de-passe-2024"


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args, input=None):
        result = runner.invoke(args=[str(a) for a in args], input=input)
        # Errors are messages, never tracebacks.
        assert "Traceback" not in result.output, result.output
        if result.exception is not None:
            assert isinstance(result.exception, SystemExit), repr(result.exception)
        db.session.expire_all()
        return result

    return invoke


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def user_by_nir(value: str) -> User | None:
    return db.session.scalar(select(User).where(User.nir == value))


# --- users add --------------------------------------------------------------------------------

def add_user(cli, nir_value, *extra, password=PW, email="jeanne.martin@exemple.fr", birth_date="1985-05-12"):
    args = ["users", "add", "--nir", nir_value, "--email", email, "--birth-date", birth_date,
            "--given-name", "Jeanne", "--family-name", "Martin", *extra]
    if password is not None:
        args += ["--password", password]
    return cli(*args)


def test_users_add(cli):
    value = make_nir(sex="2")
    spaced = f"{value[0]} {value[1:3]} {value[3:5]} {value[5:7]} {value[7:10]} {value[10:13]} {value[13:]}"
    r = add_user(cli, spaced)
    assert r.exit_code == 0, r.output
    user = user_by_nir(value)  # stored normalised
    assert user is not None
    assert r.output.strip() == f"User created with id {user.id}."
    assert PW not in r.output
    assert user.password_hash.startswith("$argon2id$")
    assert crypto.verify_password(user.password_hash, PW)
    assert user.password_changed_at is not None
    assert (user.email, user.email_verified) == ("jeanne.martin@exemple.fr", True)
    assert user.birth_date == dt.date(1985, 5, 12)
    assert (user.given_name, user.family_name, user.gender) == ("Jeanne", "Martin", None)
    assert (user.regime_code, user.caisse, user.affiliation) == ("01", None, "affiliated")


def test_users_add_every_option(cli):
    value = make_nir()
    r = add_user(cli, value, "--gender", "male", "--regime", "02", "--caisse", "MSA Beauce Cœur de Loire",
                 "--affiliation", "pending", "--email-unverified")
    assert r.exit_code == 0, r.output
    user = user_by_nir(value)
    assert user.gender == "male"
    assert (user.regime_code, user.regime_name) == ("02", "Mutualité sociale agricole (MSA)")
    assert user.caisse == "MSA Beauce Cœur de Loire"
    assert user.affiliation == "pending"
    assert user.email_verified is False


def test_users_add_prompts_for_the_password(cli):
    value = make_nir()
    r = cli(
        "users", "add", "--nir", value, "--email", "a@exemple.fr", "--birth-date", "1990-01-31",
        "--given-name", "Paul", "--family-name", "Durand", input=f"{PW}\n{PW}\n",
    )
    assert r.exit_code == 0, r.output
    assert "Password" in r.output
    assert PW not in r.output  # hidden input is not echoed
    assert crypto.verify_password(user_by_nir(value).password_hash, PW)


def test_users_add_prompt_is_not_shown_when_the_rest_is_wrong(cli):
    r = cli("users", "add", "--nir", "123", "--email", "a@exemple.fr", "--birth-date", "1990-01-31",
            "--given-name", "Paul", "--family-name", "Durand", input=f"{PW}\n{PW}\n")
    assert r.exit_code == 1
    assert "Password" not in r.output
    assert count(User) == 0


def test_users_add_bad_nir_key(cli):
    good = make_nir()
    bad = good[:13] + f"{(int(good[13:]) % 97) + 1:02d}"
    r = add_user(cli, bad)
    assert r.exit_code == 1
    assert f"control key is wrong (expected {good[13:]})" in r.output
    assert count(User) == 0


@pytest.mark.parametrize("bad, reason", [
    ("18505780060", "15 characters"),
    ("1850578006084912", "15 characters"),
    ("585057800608491", "invalid format"),  # sex 5
    ("185137800608491", "invalid format"),  # month 13
    ("18505AB00608491", "invalid format"),  # department AB
    ("2850520A1234512", "invalid format"),  # 2A at the wrong place
    ("", "missing"),
])
def test_users_add_malformed_nir(cli, bad, reason):
    r = add_user(cli, bad)
    assert r.exit_code != 0
    assert reason in r.output
    assert count(User) == 0


@pytest.mark.parametrize("dept", ["2A", "2B"])
def test_users_add_corsica(cli, dept):
    value = nir.with_key(f"28505{dept}012345")
    assert value[5:7] == dept
    r = add_user(cli, value.lower())
    assert r.exit_code == 0, r.output
    assert user_by_nir(value) is not None
    # The key is computed with 2A = 19 and 2B = 18.
    assert int(value[13:]) == 97 - int(f"28505{'19' if dept == '2A' else '18'}012345") % 97


def test_users_add_corsica_wrong_key(cli):
    value = nir.with_key("285052A012345")
    other = "2B" if value[5:7] == "2A" else "2A"
    swapped = value[:5] + other + value[7:]  # same key, other department: the key no longer matches
    r = add_user(cli, swapped)
    assert r.exit_code == 1
    assert "control key" in r.output


def test_users_add_duplicate(cli):
    value = make_nir()
    assert add_user(cli, value).exit_code == 0
    r = add_user(cli, f"{value[:7]} {value[7:]}", email="autre@exemple.fr")
    assert r.exit_code == 1
    assert "already exists" in r.output
    assert count(User) == 1


@pytest.mark.parametrize("birth_date, reason", [
    ("1985-02-30", "does not exist"),
    ("1985-13-01", "does not exist"),
    ("12/05/1985", "YYYY-MM-DD"),
    ("19850512", "YYYY-MM-DD"),
    ("", "YYYY-MM-DD"),
    ("1850-01-01", "before 1900"),
])
def test_users_add_bad_birth_date(cli, birth_date, reason):
    r = add_user(cli, make_nir(), birth_date=birth_date)
    assert r.exit_code == 1
    assert reason in r.output
    assert count(User) == 0


def test_users_add_birth_date_in_the_future(cli):
    tomorrow = (utcnow().date() + timedelta(days=1)).isoformat()
    r = add_user(cli, make_nir(), birth_date=tomorrow)
    assert r.exit_code == 1
    assert "in the future" in r.output
    today = utcnow().date().isoformat()
    assert add_user(cli, make_nir(), birth_date=today).exit_code == 0


@pytest.mark.parametrize("email", [
    "jeanne.martin", "jeanne@exemple", "jeanne@@exemple.fr", "a@b@exemple.fr", "@exemple.fr",
    "jeanne martin@exemple.fr", "jeanne@.fr", "jeanne@exemple.", "x" * 250 + "@exemple.fr",
])
def test_users_add_bad_email(cli, email):
    r = add_user(cli, make_nir(), email=email)
    assert r.exit_code == 1
    assert "email" in r.output
    assert count(User) == 0


def test_users_add_other_errors(cli):
    r = add_user(cli, make_nir(), "--regime", "99")
    assert r.exit_code == 1 and "unknown regime '99'" in r.output
    r = add_user(cli, make_nir(), "--gender", "other")
    assert r.exit_code == 2  # click's choice
    r = add_user(cli, make_nir(), "--affiliation", "maybe")
    assert r.exit_code == 2
    r = add_user(cli, make_nir(), password="x" * 129)
    assert r.exit_code == 1 and "password is longer than 128" in r.output
    r = add_user(cli, make_nir(), password="")
    assert r.exit_code == 1 and "password is empty" in r.output
    r = cli("users", "add", "--nir", make_nir(), "--email", "a@exemple.fr", "--birth-date", "1990-01-31",
            "--given-name", " ", "--family-name", "Durand", "--password", PW)
    assert r.exit_code == 1 and "given name is missing" in r.output
    assert count(User) == 0


def test_users_add_reports_every_problem(cli):
    r = add_user(cli, "123", "--regime", "77", email="nope", birth_date="1985-02-30")
    assert r.exit_code == 1
    for reason in ("15 characters", "email", "does not exist", "unknown regime"):
        assert reason in r.output


# --- users import -----------------------------------------------------------------------------

HEADER = "nir,password,email,birth_date,given_name,family_name,gender,regime,caisse,affiliation,email_verified"


def write_csv(tmp_path, *lines, header=HEADER, name="users.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_users_import(cli, tmp_path):
    a, b, c = make_nir(), make_nir(sex="2"), nir.with_key("185052B012345")
    path = write_csv(
        tmp_path,
        f"{a},{PW},a@exemple.fr,1985-05-12,Jean,Dupont,male,01,CPAM de Paris,affiliated,true",
        f"{b},autre-Mot2passe,b@exemple.fr,1970-01-01,Marie,\"Le Gall, épouse Durand\",female,02,,pending,false",
        "",
        f"{c[:5]} {c[5:]},x,c@exemple.fr,2000-02-29,Ange,Santoni,,,,,",
    )
    r = cli("users", "import", path)
    assert r.exit_code == 0, r.output
    assert "3 user(s) imported" in r.output
    assert PW not in r.output
    ua, ub, uc = user_by_nir(a), user_by_nir(b), user_by_nir(c)
    assert crypto.verify_password(ua.password_hash, PW)
    assert (ua.gender, ua.caisse, ua.email_verified) == ("male", "CPAM de Paris", True)
    assert (ub.family_name, ub.regime_code, ub.caisse, ub.affiliation, ub.email_verified) == (
        "Le Gall, épouse Durand", "02", None, "pending", False)
    assert (uc.gender, uc.regime_code, uc.affiliation, uc.email_verified) == (None, "01", "affiliated", True)
    assert uc.birth_date == dt.date(2000, 2, 29)


def test_users_import_required_columns_only_any_order_with_bom(cli, tmp_path):
    a = make_nir()
    path = tmp_path / "min.csv"
    path.write_text(f"\ufeffemail,nir,password,birth_date,family_name,given_name\r\n"
                    f"a@exemple.fr,{a},{PW},1985-05-12,Dupont,Jean\r\n", encoding="utf-8")
    r = cli("users", "import", path)
    assert r.exit_code == 0, r.output
    user = user_by_nir(a)
    assert (user.given_name, user.family_name, user.regime_code) == ("Jean", "Dupont", "01")


def test_users_import_reports_every_bad_line_and_imports_nothing(cli, tmp_path):
    good = make_nir()
    bad_key = good[:13] + ("01" if good[13:] != "01" else "02")
    path = write_csv(
        tmp_path,
        f"{make_nir()},{PW},ok@exemple.fr,1985-05-12,Jean,Dupont,,,,,",             # line 2: fine
        f"{bad_key},{PW},a@exemple.fr,1985-05-12,Jean,Dupont,,,,,",                 # line 3
        f"{make_nir()},{PW},b@exemple.fr,1985-02-30,Jean,Dupont,,,,,",              # line 4
        f"{make_nir()},{PW},pas-un-email,1985-05-12,Jean,Dupont,unknown,99,,,peut-être",  # line 5
        f"{make_nir()},{PW},c@exemple.fr,1985-05-12,Jean",                          # line 6
        f"{make_nir()},,d@exemple.fr,1985-05-12,Jean,Dupont,,,,,",                  # line 7
    )
    r = cli("users", "import", path)
    assert r.exit_code == 1
    out = r.output
    assert "line 2:" not in out
    assert "line 3: NIR control key is wrong" in out
    assert "line 4: birth date 1985-02-30 does not exist" in out
    assert "line 5: email" in out and "line 5: gender" in out and "line 5: unknown regime" in out
    assert "line 5: email_verified must be true or false" in out
    assert "line 6: expected 11 fields, found 5" in out
    assert "line 7: password is empty" in out
    assert "5 invalid line(s)" in out and "nothing imported" in out
    assert PW not in out
    assert count(User) == 0


def test_users_import_line_numbers_follow_the_file(cli, tmp_path):
    path = write_csv(
        tmp_path,
        f'{make_nir()},{PW},a@exemple.fr,1985-05-12,Jean,"Dupont\nsur deux lignes",,,,,',  # lines 2-3
        "",                                                                              # line 4
        f"{make_nir()},{PW},b@exemple.fr,1985-05-12,,Dupont,,,,,",                        # line 5
    )
    r = cli("users", "import", path)
    assert r.exit_code == 1
    assert "line 5: given name is missing" in r.output
    assert count(User) == 0


def test_users_import_duplicate_in_file(cli, tmp_path):
    a = make_nir()
    path = write_csv(
        tmp_path,
        f"{a},{PW},a@exemple.fr,1985-05-12,Jean,Dupont,,,,,",
        f"{make_nir()},{PW},b@exemple.fr,1985-05-12,Jean,Dupont,,,,,",
        f"{a[:7]} {a[7:]},{PW},c@exemple.fr,1985-05-12,Jean,Dupont,,,,,",
    )
    r = cli("users", "import", path)
    assert r.exit_code == 1
    assert "line 4: NIR already on line 2" in r.output
    assert count(User) == 0


def test_users_import_duplicate_in_database(cli, tmp_path, make_user):
    existing = make_user()
    path = write_csv(
        tmp_path,
        f"{make_nir()},{PW},a@exemple.fr,1985-05-12,Jean,Dupont,,,,,",
        f"{existing.nir},{PW},b@exemple.fr,1985-05-12,Jean,Dupont,,,,,",
    )
    r = cli("users", "import", path)
    assert r.exit_code == 1
    assert "line 3: an account with this NIR already exists" in r.output
    assert count(User) == 1


@pytest.mark.parametrize("header, reason", [
    ("nir,password,email,birth_date,given_name", "missing column(s): family_name"),
    (HEADER + ",telephone", "unknown column(s): telephone"),
    ("nir,nir,password,email,birth_date,given_name,family_name", "repeated column(s): nir"),
])
def test_users_import_bad_header(cli, tmp_path, header, reason):
    path = write_csv(tmp_path, f"{make_nir()},{PW},a@exemple.fr,1985-05-12,Jean,Dupont,,,,,", header=header)
    r = cli("users", "import", path)
    assert r.exit_code == 1
    assert f"line 1: {reason}" in r.output
    assert count(User) == 0


def test_users_import_malformed_csv(cli, tmp_path):
    path = write_csv(
        tmp_path,
        f"{make_nir()},{PW},a@exemple.fr,1985-05-12,Jean,Dupont,,,,,",
        f'{make_nir()},{PW},b@exemple.fr,1985-05-12,Jean,"Dupont,,,,,',
    )
    r = cli("users", "import", path)
    assert r.exit_code == 1
    assert "line 3: malformed CSV" in r.output
    assert count(User) == 0

    path = write_csv(tmp_path, f"{make_nir()};{PW};a@exemple.fr;1985-05-12;Jean;Dupont",
                     header=HEADER.replace(",", ";"))
    r = cli("users", "import", path)
    assert r.exit_code == 1
    assert "separator must be a comma" in r.output
    assert count(User) == 0


def test_users_import_empty_and_missing_files(cli, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    r = cli("users", "import", empty)
    assert r.exit_code == 1 and "header" in r.output
    r = cli("users", "import", write_csv(tmp_path))
    assert r.exit_code == 0 and "nothing imported" in r.output
    r = cli("users", "import", tmp_path / "absent.csv")
    assert r.exit_code == 2
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes((HEADER + "\n" + f"{make_nir()},{PW},a@exemple.fr,1985-05-12,Hélène,Dupont,,,,,\n")
                       .encode("latin-1"))
    r = cli("users", "import", latin1)
    assert r.exit_code == 1 and "UTF-8" in r.output
    assert count(User) == 0


# --- users show -------------------------------------------------------------------------------

def test_users_show(cli, make_user):
    user = make_user(regime_code="04", caisse="CPR SNCF", affiliation="pending", email_verified=False)
    r = cli("users", "show", f"{user.nir[:1]} {user.nir[1:]}")
    assert r.exit_code == 0, r.output
    out = r.output
    for text in (user.nir, "Jeanne", "Martin", "1985-05-12", f"{user.email} (not verified)",
                 "04 Caisse de prévoyance et de retraite du personnel de la SNCF", "CPR SNCF", "pending", "Created:"):
        assert text in out
    assert user.password_hash not in out
    assert "$argon2" not in out


def test_users_show_unknown_or_invalid(cli):
    r = cli("users", "show", make_nir())
    assert r.exit_code == 1
    assert "No account" in r.output
    r = cli("users", "show", "123")
    assert r.exit_code == 1
    assert "15 characters" in r.output


# --- clients add ------------------------------------------------------------------------------

def client_by_id(client_id: str) -> Client | None:
    return db.session.scalar(select(Client).where(Client.client_id == client_id))


def parse_plain(output: str) -> dict:
    values = {}
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep and key in ("client_id", "client_secret"):
            values[key] = value.strip()
    return values


def test_clients_add_confidential(cli):
    r = cli("clients", "add", "--name", "Mutuelle Exemple", "--redirect-uri", "https://rp.exemple.fr/cb",
            "--redirect-uri", "https://rp.exemple.fr/cb2", "--post-logout-redirect-uri", "https://rp.exemple.fr/")
    assert r.exit_code == 0, r.output
    values = parse_plain(r.stdout)
    secret = values["client_secret"]
    assert r.output.count(secret) == 1  # shown once
    assert "only this once" in r.stderr
    client = client_by_id(values["client_id"])
    assert len(client.client_id) >= 22 and len(secret) >= 43
    assert client.name == "Mutuelle Exemple"
    assert client.redirect_uris == ["https://rp.exemple.fr/cb", "https://rp.exemple.fr/cb2"]
    assert client.post_logout_redirect_uris == ["https://rp.exemple.fr/"]
    assert client.scope == "openid profile email"
    assert client.grant_types == ["authorization_code", "refresh_token"]
    assert client.id_token_signed_response_alg is None
    assert not client.is_public
    # Stored hashed only.
    assert client.client_secret_hash != secret
    assert secret not in client.client_secret_hash
    assert client.check_client_secret(secret)
    assert not client.check_client_secret(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert client.token_endpoint_auth_method == "client_secret_basic"


def test_clients_add_public_with_options(cli):
    r = cli("clients", "add", "--name", "Appli mobile", "--public", "--redirect-uri", "http://127.0.0.1:8400/cb",
            "--redirect-uri", "http://localhost/cb", "--redirect-uri", "http://[::1]:9000/cb",
            "--scope", "openid affiliation", "--alg", "ES256")
    assert r.exit_code == 0, r.output
    values = parse_plain(r.output)
    assert "client_secret" not in values
    client = client_by_id(values["client_id"])
    assert client.is_public and client.client_secret_hash is None
    assert client.token_endpoint_auth_method == "none"
    assert client.redirect_uris == ["http://127.0.0.1:8400/cb", "http://localhost/cb", "http://[::1]:9000/cb"]
    assert client.scope == "openid affiliation"
    assert client.id_token_signed_response_alg == "ES256"


def test_clients_add_json(cli):
    r = cli("clients", "add", "--name", "Portail", "--redirect-uri", "https://portail.exemple.fr/cb",
            "--client-credentials", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert set(data) >= {"client_id", "client_secret", "redirect_uris", "scope", "grant_types"}
    assert data["redirect_uris"] == ["https://portail.exemple.fr/cb"]
    assert data["grant_types"] == ["authorization_code", "refresh_token", "client_credentials"]
    assert data["token_endpoint_auth_method"] == "client_secret_basic"
    assert data["id_token_signed_response_alg"] == "RS256"
    client = client_by_id(data["client_id"])
    assert client.check_client_secret(data["client_secret"])
    assert client.client_secret_hash != data["client_secret"]
    assert client.check_grant_type("client_credentials")

    r = cli("clients", "add", "--name", "Public", "--public", "--redirect-uri", "http://127.0.0.1/cb", "--json")
    data = json.loads(r.stdout)
    assert data["client_secret"] is None
    assert data["token_endpoint_auth_method"] == "none"


def test_clients_add_userinfo_signed_response_alg(cli):
    """OIDC Core §5.3.2: signed UserInfo per client (tests/test_oidf_basic_op.py::test_oidcc_userinfo_rs256)."""
    r = cli("clients", "add", "--name", "Portail", "--redirect-uri", "https://portail.exemple.fr/cb",
            "--userinfo-signed-response-alg", "ES256", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["userinfo_signed_response_alg"] == "ES256"
    assert client_by_id(data["client_id"]).userinfo_signed_response_alg == "ES256"
    r = cli("clients", "add", "--name", "Plain", "--redirect-uri", "https://plain.exemple.fr/cb", "--json")
    data = json.loads(r.stdout)
    assert data["userinfo_signed_response_alg"] is None  # plain JSON
    assert client_by_id(data["client_id"]).userinfo_signed_response_alg is None

    # idp clients update changes it in place, and "default" goes back to plain JSON.
    plain = data["client_id"]
    r = cli("clients", "update", plain, "--userinfo-signed-response-alg", "RS256", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["userinfo_signed_response_alg"] == "RS256"
    assert client_by_id(plain).userinfo_signed_response_alg == "RS256"
    r = cli("clients", "update", plain, "--userinfo-signed-response-alg", "default")
    assert r.exit_code == 0 and "userinfo_signed_response_alg" in r.output, r.output
    assert client_by_id(plain).userinfo_signed_response_alg is None
    r = cli("clients", "update", plain, "--userinfo-signed-response-alg", "none")
    assert r.exit_code == 2


@pytest.mark.parametrize("uri, reason", [
    ("http://rp.exemple.fr/cb", "only https is allowed"),
    ("http://127.0.0.2/cb", "only https is allowed"),
    ("http://localhost.exemple.fr/cb", "only https is allowed"),
    ("https://rp.exemple.fr/cb#frag", "fragment"),
    ("https://rp.exemple.fr/cb#", "fragment"),
    ("/cb", "absolute http or https"),
    ("rp.exemple.fr/cb", "absolute http or https"),
    ("ftp://rp.exemple.fr/cb", "absolute http or https"),
    ("com.exemple.app:/cb", "absolute http or https"),
    ("https:///cb", "no host"),
    ("https://user:pw@rp.exemple.fr/cb", "credentials"),
    ("https://rp.exemple.fr/c b", "spaces"),
    ("https://rp.exemple.fr:99999/cb", "not a valid URL"),
    ("https://rp.exemple.fr/" + "a" * 2100, "longer than"),
])
def test_clients_add_refuses_bad_redirect_uris(cli, uri, reason):
    r = cli("clients", "add", "--name", "RP", "--redirect-uri", "https://ok.exemple.fr/cb", "--redirect-uri", uri)
    assert r.exit_code == 2
    assert reason in r.output
    r = cli("clients", "add", "--name", "RP", "--redirect-uri", "https://ok.exemple.fr/cb",
            "--post-logout-redirect-uri", uri)
    assert r.exit_code == 2
    assert "--post-logout-redirect-uri" in r.output
    assert count(Client) == 0


@pytest.mark.parametrize("args, reason", [
    (["--scope", "profile email"], "must include openid"),
    (["--scope", "openid phone"], "unsupported scope(s) phone"),
    (["--scope", ""], "must include openid"),
    (["--public", "--client-credentials"], "confidential client"),
    (["--alg", "HS256"], "HS256"),
    (["--alg", "none"], "none"),
    (["--userinfo-signed-response-alg", "HS256"], "HS256"),
    (["--userinfo-signed-response-alg", "none"], "none"),
    (["--name", "  "], "must not be empty"),
])
def test_clients_add_refuses(cli, args, reason):
    r = cli("clients", "add", "--name", "RP", "--redirect-uri", "https://rp.exemple.fr/cb", *args)
    assert r.exit_code == 2
    assert reason in r.output
    assert count(Client) == 0


def test_clients_add_needs_a_redirect_uri(cli):
    r = cli("clients", "add", "--name", "RP")
    assert r.exit_code == 2
    assert "--redirect-uri" in r.output


# --- clients list / remove --------------------------------------------------------------------

def test_clients_list(cli, make_client):
    assert cli("clients", "list").output.strip() == "No clients."
    confidential, _ = make_client(name="Mutuelle A", redirect_uris=("https://a.exemple.fr/cb",))
    public, _ = make_client(name="Appli B", public=True, scope="openid")
    r = cli("clients", "list")
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].split() == ["CLIENT_ID", "NAME", "TYPE", "REDIRECT", "URIS", "SCOPE"]
    row_a = next(line for line in lines if confidential.client_id in line)
    row_b = next(line for line in lines if public.client_id in line)
    assert "Mutuelle A" in row_a and "confidential" in row_a and "https://a.exemple.fr/cb" in row_a
    assert row_a.endswith("openid profile email affiliation")
    assert "Appli B" in row_b and "public" in row_b and "http://127.0.0.1:8765/callback" in row_b


def _grant_family(client, user, suffix: str):
    grant = Grant(client_id=client.id, user_id=user.id, scope="openid", nonce="n", auth_time=0)
    db.session.add(grant)
    db.session.flush()
    db.session.add(AuthorizationCode(
        code_hash=crypto.keyed_hash("t", "code" + suffix), grant_id=grant.id, redirect_uri=client.redirect_uris[0],
        code_challenge="c" * 43, code_challenge_method="S256", expires_at=utcnow() + timedelta(minutes=1),
    ))
    db.session.add(Token(
        client_id=client.id, grant_id=grant.id, user_id=user.id, access_token_hash=crypto.keyed_hash("t", "at" + suffix),
        refresh_token_hash=crypto.keyed_hash("t", "rt" + suffix), scope="openid", expires_in=600,
    ))
    db.session.add(Token(client_id=client.id, access_token_hash=crypto.keyed_hash("t", "cc" + suffix),
                         scope="", expires_in=600))
    db.session.add(LoginFlow(
        flow_hash=crypto.keyed_hash("t", "flow" + suffix), client_id=client.id, authorization_params={},
        expires_at=utcnow() + timedelta(minutes=30),
    ))
    db.session.commit()


def test_clients_remove_cascades(cli, make_client, make_user):
    user = make_user()
    doomed, _ = make_client()
    kept, _ = make_client()
    _grant_family(doomed, user, "1")
    _grant_family(kept, user, "2")
    doomed_id, doomed_pk, kept_pk = doomed.client_id, doomed.id, kept.id

    r = cli("clients", "remove", doomed_id)
    assert r.exit_code == 0, r.output
    assert "removed, with 1 grant(s) and 2 token(s)" in r.output
    assert client_by_id(doomed_id) is None
    for model in (Grant, Token, LoginFlow):
        assert db.session.scalar(select(func.count()).select_from(model).where(model.client_id == doomed_pk)) == 0
        assert db.session.scalar(select(func.count()).select_from(model).where(model.client_id == kept_pk)) >= 1
    assert count(AuthorizationCode) == 1  # the other client's
    assert count(Token) == 2
    assert user_by_nir(user.nir) is not None


def test_clients_remove_unknown(cli):
    r = cli("clients", "remove", "nope")
    assert r.exit_code == 1
    assert "No client nope" in r.output


# --- keys ---------------------------------------------------------------------------------------

def active_kid(alg: str = "RS256") -> str:
    return db.session.scalar(select(SigningKey.kid).where(SigningKey.alg == alg, SigningKey.status == "active"))


def next_kid(alg: str = "RS256") -> str:
    return db.session.scalar(select(SigningKey.kid).where(SigningKey.alg == alg, SigningKey.status == "next"))


def test_keys_list(cli):
    r = cli("keys", "list")
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].split() == ["KID", "ALG", "STATUS", "AGE", "CREATED", "ACTIVATED", "RETIRED", "VERIFIES"]
    assert len(lines) == 5
    for alg in ("RS256", "ES256"):
        assert any(active_kid(alg) in line and " active " in line for line in lines)
        assert any(next_kid(alg) in line and " next " in line for line in lines)


def test_keys_list_empty(cli):
    db.session.execute(SigningKey.__table__.delete())
    db.session.commit()
    r = cli("keys", "list")
    assert r.exit_code == 0 and "idp init" in r.output


def test_keys_rotate(cli, web):
    old_rs, next_rs, old_es = active_kid("RS256"), next_kid("RS256"), active_kid("ES256")
    r = cli("keys", "rotate")
    assert r.exit_code == 0, r.output
    assert "Warning" not in r.output
    assert f"RS256: {old_rs} retired, {next_rs} active." in r.output
    assert active_kid("RS256") == next_rs
    assert active_kid("ES256") != old_es
    assert db.session.get(SigningKey, old_rs).status == "retired"
    assert db.session.get(SigningKey, old_rs).retired_at is not None
    assert next_kid("RS256") not in (old_rs, next_rs)
    jwks = {k["kid"]: k for k in web.get("/jwks.json").get_json()["keys"]}
    assert {old_rs, old_es, active_kid("RS256"), active_kid("ES256"), next_kid("RS256")} <= set(jwks)
    assert all("d" not in k for k in jwks.values())


def test_keys_rotate_one_alg(cli):
    rs, es = active_kid("RS256"), active_kid("ES256")
    r = cli("keys", "rotate", "--alg", "ES256")
    assert r.exit_code == 0, r.output
    assert "RS256" not in r.output.splitlines()[0]
    assert active_kid("RS256") == rs
    assert active_kid("ES256") != es
    assert cli("keys", "rotate", "--alg", "HS256").exit_code == 2


def test_keys_retire(cli):
    active, upcoming = active_kid(), next_kid()
    r = cli("keys", "retire", active)
    assert r.exit_code == 1
    assert "This key signs" in r.output
    assert db.session.get(SigningKey, active).status == "active"

    r = cli("keys", "retire", upcoming)
    assert r.exit_code == 0, r.output
    assert db.session.get(SigningKey, upcoming).status == "retired"
    r = cli("keys", "retire", upcoming)
    assert r.exit_code == 1 and "already retired" in r.output
    r = cli("keys", "retire", "unknown-kid")
    assert r.exit_code == 1 and "No key unknown-kid" in r.output
    # A rotation without a next key makes one on the fly, and says it was never published.
    r = cli("keys", "rotate", "--alg", "RS256")
    assert r.exit_code == 0
    assert "no next RS256 key was published" in r.stderr
    assert active_kid() not in (active, upcoming)


def test_keys_remove(cli, web):
    old = active_kid()
    assert cli("keys", "rotate").exit_code == 0
    r = cli("keys", "remove", old)
    assert r.exit_code == 1
    assert "--force" in r.output
    assert db.session.get(SigningKey, old) is not None

    r = cli("keys", "remove", active_kid())
    assert r.exit_code == 1 and "Only a retired key" in r.output
    r = cli("keys", "remove", "unknown-kid")
    assert r.exit_code == 1 and "No key" in r.output

    r = cli("keys", "remove", old, "--force")
    assert r.exit_code == 0, r.output
    assert db.session.get(SigningKey, old) is None
    assert old not in {k["kid"] for k in web.get("/jwks.json").get_json()["keys"]}


def test_keys_remove_old_retired_key_without_force(cli, app):
    old = active_kid("ES256")
    assert cli("keys", "rotate").exit_code == 0
    key = db.session.get(SigningKey, old)
    horizon = max(app.config["IDP_ID_TOKEN_LIFETIME"], app.config["IDP_ACCESS_TOKEN_LIFETIME"])
    key.retired_at = utcnow() - timedelta(seconds=horizon + 1)
    db.session.commit()
    r = cli("keys", "remove", old)
    assert r.exit_code == 0, r.output
    assert db.session.get(SigningKey, old) is None


@pytest.mark.parametrize("kid", ["-fAb_9", "--force-x", "-h", "--x_y"])
def test_keys_commands_take_kids_starting_with_a_dash(cli, kid):
    """Kids are base64url: about one in 32 starts with "-" and must not be read as an option."""
    model = db.session.get(SigningKey, next_kid("ES256"))
    db.session.add(SigningKey(kid=kid, alg="ES256", status="next", public_jwk={**model.public_jwk, "kid": kid},
                              private_key_encrypted=b"unused"))
    db.session.commit()
    r = cli("keys", "retire", kid)
    assert r.exit_code == 0, r.output
    r = cli("keys", "remove", kid)
    assert r.exit_code == 1 and "--force" in r.output
    r = cli("keys", "remove", kid, "--force")
    assert r.exit_code == 0, r.output
    assert db.session.get(SigningKey, kid) is None


def test_clients_remove_takes_ids_starting_with_a_dash(cli, make_client):
    client, _ = make_client()
    client.client_id = "-h"
    db.session.commit()
    r = cli("clients", "remove", "-h")
    assert r.exit_code == 0, r.output
    assert count(Client) == 0


def test_client_ids_never_start_with_a_dash(cli, monkeypatch):
    draws = iter(["-first", "-second", "third"])
    monkeypatch.setattr(crypto, "random_token", lambda n=32: next(draws) if n == 16 else "s" * 43)
    r = cli("clients", "add", "--name", "RP", "--redirect-uri", "https://rp.exemple.fr/cb")
    assert r.exit_code == 0, r.output
    assert parse_plain(r.output)["client_id"] == "third"


# --- users unlock --------------------------------------------------------------------------


def test_users_unlock_lifts_every_lock_of_the_journey(app, cli, make_user):
    """Cases 3, 5 and 6: an administrator lifts the locks; `users show` lists them first."""
    from idp import limits
    from idp.login import policy

    user = make_user()
    for _ in range(app.config["IDP_MAX_PASSWORD_FAILURES"]):
        limits.hit(policy.password_failures(), policy.nir_key(user.nir))
    for _ in range(app.config["IDP_MAX_CODE_FAILURES"]):
        limits.hit(policy.code_failures(), policy.user_key(user.id))
    for _ in range(app.config["IDP_CODE_QUOTA"] + 1):
        limits.hit(policy.code_quota(), policy.user_key(user.id))

    shown = cli("users", "show", user.nir).output
    for label in ("Password lock:", "Code lock:", "Code quota:"):  # reset-mail quota: not hit here
        line = next(l for l in shown.splitlines() if l.startswith(label))
        assert "locked until" in line, shown

    r = cli("users", "unlock", user.nir)
    assert r.exit_code == 0, r.output
    assert "Password lock, Code lock, Code quota" in r.output
    assert limits.locked_until(policy.password_failures(), policy.nir_key(user.nir)) is None
    assert limits.locked_until(policy.code_failures(), policy.user_key(user.id)) is None
    assert limits.locked_until(policy.code_quota(), policy.user_key(user.id)) is None
    assert limits.count(policy.password_failures(), policy.nir_key(user.nir)) == 0


def test_users_unlock_works_for_a_nir_without_account(app, cli):
    """Case 6 is counted per NIR typed, account or not: the lock can be lifted the same way."""
    from idp import limits
    from idp.login import policy

    value = make_nir()
    for _ in range(app.config["IDP_MAX_PASSWORD_FAILURES"]):
        limits.hit(policy.password_failures(), policy.nir_key(value))
    r = cli("users", "unlock", value)
    assert r.exit_code == 0 and "Password lock" in r.output
    assert limits.locked_until(policy.password_failures(), policy.nir_key(value)) is None
    assert cli("users", "unlock", value).output.strip() == "Nothing was locked; counters reset."


def test_users_unlock_refuses_a_malformed_nir(cli):
    r = cli("users", "unlock", "123")
    assert r.exit_code != 0 and "Traceback" not in r.output


def test_users_unlock_lifts_the_reset_mail_block(app, cli):
    """Forgotten password, case 2: the reset-mail block is per NIR and lifted with the others."""
    from idp import limits
    from idp.login import policy
    from idp.recovery.policy import reset_mail_quota

    value = make_nir()
    for _ in range(app.config["IDP_RESET_MAIL_QUOTA"] + 1):
        limits.hit(reset_mail_quota(), policy.nir_key(value))
    assert limits.locked_until(reset_mail_quota(), policy.nir_key(value)) is not None
    r = cli("users", "unlock", value)
    assert r.exit_code == 0 and "Reset-mail quota" in r.output, r.output
    assert limits.locked_until(reset_mail_quota(), policy.nir_key(value)) is None


@pytest.mark.parametrize("bind", ["8000", "localhost", "127.0.0.1:http", ":"])
def test_serve_refuses_a_bind_address_without_a_port(bind):
    """``idp serve --bind`` is HOST:PORT; anything else is a usage error naming the option, before any server starts."""
    from click.testing import CliRunner

    from idp.cli import main

    result = CliRunner().invoke(main, ["serve", "--bind", bind])
    assert result.exit_code == 2, result.output
    assert "--bind" in result.output and "HOST:PORT" in result.output
    assert "Traceback" not in result.output


def test_serve_access_log_format_has_no_query_string_and_no_referer():
    from idp.cli.serve import ACCESS_LOG_FORMAT

    assert "%(path)s" in ACCESS_LOG_FORMAT
    assert "query" not in ACCESS_LOG_FORMAT and "referer" not in ACCESS_LOG_FORMAT.lower()


def test_serve_refuses_an_unknown_log_format(monkeypatch):
    """``IDP_LOG_FORMAT`` is text or json: anything else stops ``idp serve`` before a worker starts."""
    from click.testing import CliRunner

    from idp.cli import main

    monkeypatch.setenv("IDP_LOG_FORMAT", "xml")
    result = CliRunner().invoke(main, ["serve", "--bind", "127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    assert "IDP_LOG_FORMAT" in result.output and "json" in result.output
    assert "Traceback" not in result.output


# --- clients add/update: the partner's branding on the login pages (issue 11) -------------------

def test_clients_add_and_update_logo_uri_and_client_uri(cli):
    r = cli("clients", "add", "--name", "Mutuelle Exemple", "--redirect-uri", "https://rp.exemple.fr/cb",
            "--logo-uri", "https://rp.exemple.fr/logo.png", "--client-uri", "https://rp.exemple.fr/", "--json")
    assert r.exit_code == 0, r.output
    registration = json.loads(r.stdout)
    assert registration["logo_uri"] == "https://rp.exemple.fr/logo.png"
    assert registration["client_uri"] == "https://rp.exemple.fr/"
    client = client_by_id(registration["client_id"])
    assert (client.logo_uri, client.client_uri) == ("https://rp.exemple.fr/logo.png", "https://rp.exemple.fr/")

    r = cli("clients", "update", client.client_id, "--logo-uri", "http://localhost:8000/logo.svg", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["logo_uri"] == "http://localhost:8000/logo.svg"
    r = cli("clients", "update", client.client_id, "--logo-uri", "", "--client-uri", "")
    assert r.exit_code == 0, r.output
    client = client_by_id(client.client_id)
    assert client.logo_uri is None and client.client_uri is None


def test_clients_without_branding_show_none(cli):
    r = cli("clients", "add", "--name", "Sans logo", "--redirect-uri", "https://rp.exemple.fr/cb", "--json")
    registration = json.loads(r.stdout)
    assert registration["logo_uri"] is None and registration["client_uri"] is None


@pytest.mark.parametrize("option", ["--logo-uri", "--client-uri"])
@pytest.mark.parametrize("bad", ["http://rp.exemple.fr/logo.png", "javascript:alert(1)", "logo.png",
                                 "ftp://rp.exemple.fr/logo.png"])
def test_clients_branding_urls_must_be_https(cli, option, bad):
    r = cli("clients", "add", "--name", "Mutuelle", "--redirect-uri", "https://rp.exemple.fr/cb", option, bad)
    assert r.exit_code == 2 and option in r.output, r.output
    assert count(Client) == 0
    r = cli("clients", "add", "--name", "Mutuelle", "--redirect-uri", "https://rp.exemple.fr/cb")
    client_id = parse_plain(r.stdout)["client_id"]
    r = cli("clients", "update", client_id, option, bad)
    assert r.exit_code == 2 and option in r.output, r.output
    client = client_by_id(client_id)
    assert client.logo_uri is None and client.client_uri is None
