"""The giftcards command: demo data, schema export, tokens and their arguments, version and help, an
unreachable database."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version

import jwt
import pytest

from app import cli
from app.cli_args import describe_duration, shows_default
from tests.conftest import ROOT


@pytest.fixture
def environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GIFTCARDS_PERMISSIONS_FILE", str(ROOT / "permissions.yaml"))
    assert cli.main(["db", "upgrade"]) == 0
    return tmp_path


def test_demo_data_loads_once_and_writes_codes_on_request(environment, capsys):
    codes_file = environment / "codes.tsv"
    assert cli.main(["demo-data", "--cards", "25", "--codes-file", str(codes_file)]) == 0
    assert "loaded 30 demo cards" in capsys.readouterr().out
    lines = codes_file.read_text().splitlines()
    assert len(lines) == 6 + 25 * 3  # the well-known cards' six codes, then three per random card
    assert {line.split("\t")[0] for line in lines} == {"PHYSICAL", "EXTERNAL", "PERSONAL"}
    # a second run changes nothing; asking for more cards adds only random ones
    assert cli.main(["demo-data"]) == 0
    assert "already holds 30 cards" in capsys.readouterr().out
    assert cli.main(["demo-data", "--cards", "3"]) == 0
    assert "loaded 3 demo cards" in capsys.readouterr().out


def test_demo_data_refuses_an_unmigrated_database(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", f"sqlite:///{tmp_path}/new.db")
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "state"))
    assert cli.main(["demo-data"]) == 2
    assert "giftcards db upgrade" in capsys.readouterr().err


def test_export_schema_matches_the_checked_in_file(capsys):
    assert cli.main(["export-schema"]) == 0
    assert capsys.readouterr().out == (ROOT / "schema.graphql").read_text()


def test_unknown_setting_is_reported_not_raised(monkeypatch, capsys):
    monkeypatch.setenv("GIFTCARDS_DATABSE_URL", "sqlite://")
    assert cli.main(["db", "current"]) == 2
    assert "unknown setting GIFTCARDS_DATABSE_URL" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800)]
)
def test_durations(text, seconds):
    assert cli.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1w", "-5m", "1.5h", "h"])
def test_bad_durations(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_duration(text)


@pytest.mark.parametrize("text", ["0", "0s", "0d"])
def test_a_zero_duration_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1s"):
        cli.parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(2592000, "30 days"), (86400, "1 day"), (7200, "2 hours"), (90, "90 seconds"), (1, "1 second")],
)
def test_durations_are_described_in_the_largest_whole_unit(seconds, text):
    assert describe_duration(seconds) == text


# --- version and help ----------------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"giftcards {version('giftcards')}\n"


def _parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``parser`` and every subcommand's parser under it, by their program names."""
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _parsers(child)


def test_every_option_of_every_command_has_help_and_shows_its_default():
    parsers = dict(_parsers(cli.build_parser()))
    assert {"giftcards token", "giftcards client add", "giftcards keys"} <= set(parsers)
    for prog, parser in parsers.items():
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{prog} {action.dest}: no help"
            if shows_default(action):
                assert f"(default: {action.default})" in text, f"{prog} {action.dest}: default not shown"


def test_help_shows_defaults_worth_saying(capsys):
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "address to listen on (default: 127.0.0.1)" in text
    assert "port to listen on (default: 8000)" in text
    assert "log every request (default" not in text  # a flag is off unless given
    with pytest.raises(SystemExit):
        cli.main(["token", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 1h)" in text
    assert "(repeatable) (default" not in text  # unset unless given


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "0"], "'0' is not a port from 1 to 65535"),
        (["serve", "--port", "http"], "'http' is not a port from 1 to 65535"),
        (["serve", "--workers", "0"], "'0' is not a number of workers from 1 to 256"),
        (["demo-data", "--cards", "-3"], "'-3' is not a number of cards from 0 to 10000000"),
        (["token", "--sub", "x", "--ttl", "2w"], "'2w' is not a duration like 90s, 15m, 1h or 7d"),
        (["token", "--sub", "x", "--ttl", "0m"], "'0m' is too short: at least 1s"),
    ],
)
def test_bad_arguments_are_refused_with_what_is_expected(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


# --- giftcards token -----------------------------------------------------------------------------


@pytest.mark.parametrize(("ttl", "seconds"), [("45s", 45), ("15m", 900), ("8h", 28800), ("30d", 2592000)])
def test_token_lifetimes_in_every_unit(environment, capsys, ttl, seconds):
    assert cli.main(["token", "--sub", "me", "--role", "admin", "--ttl", ttl]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == seconds


def test_a_token_longer_than_the_maximum_is_refused_in_days(environment, capsys):
    assert cli.main(["token", "--sub", "me", "--role", "admin", "--ttl", "60d"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "giftcards: --ttl 60 days is too long: at most 30 days (GIFTCARDS_TOKEN_MAX_TTL_SECONDS)\n"
    )


def test_token_outside_the_project_folder_says_where_it_looked_and_mints_nothing(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GIFTCARDS_STATE_DIR", raising=False)
    monkeypatch.delenv("GIFTCARDS_JWT_SECRET", raising=False)
    monkeypatch.setenv("GIFTCARDS_PERMISSIONS_FILE", str(ROOT / "permissions.yaml"))
    assert cli.main(["token", "--sub", "me", "--role", "admin"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"no development state file at {tmp_path / '.giftcards' / 'secrets.json'}," in captured.err
    assert "GIFTCARDS_STATE_DIR" in captured.err and "GIFTCARDS_JWT_SECRET" in captured.err
    assert list(tmp_path.iterdir()) == []  # no state file made where no server reads it


def test_token_outside_the_project_folder_signs_with_a_given_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GIFTCARDS_STATE_DIR", raising=False)
    monkeypatch.setenv("GIFTCARDS_JWT_SECRET", "s" * 40)
    monkeypatch.setenv("GIFTCARDS_PERMISSIONS_FILE", str(ROOT / "permissions.yaml"))
    assert cli.main(["token", "--sub", "me", "--role", "admin"]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.decode(token, "s" * 40, algorithms=["HS256"], audience="giftcards-api")["sub"] == "me"
    assert list(tmp_path.iterdir()) == []


def test_token_signs_with_the_state_files_secret_the_server_reads(environment, capsys):
    from app.config import load_settings

    assert cli.main(["token", "--sub", "me", "--role", "admin"]) == 0
    token = capsys.readouterr().out.strip()
    secret = load_settings(os.environ).jwt_secret
    assert secret is not None
    assert jwt.decode(token, secret.get_secret_value(), algorithms=["HS256"], audience="giftcards-api")


# --- an unreachable database ---------------------------------------------------------------------

UNREACHABLE = "postgresql+psycopg://postgres:hunter2secret@127.0.0.1:1/test"


@pytest.mark.parametrize("command", [["serve"], ["db", "upgrade"], ["db", "current"], ["demo-data"]])
def test_an_unreachable_database_is_one_line_without_the_password(tmp_path, command):
    environ = {
        **{name: value for name, value in os.environ.items() if not name.startswith("GIFTCARDS_")},
        "GIFTCARDS_DATABASE_URL": UNREACHABLE,
        "GIFTCARDS_STATE_DIR": str(tmp_path / "state"),
        "GIFTCARDS_PERMISSIONS_FILE": str(ROOT / "permissions.yaml"),
    }
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", *command], env=environ, cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 2
    assert run.stderr == (
        "giftcards: cannot reach the database at 127.0.0.1:1 (connection refused): "
        "check GIFTCARDS_DATABASE_URL and that the server is running\n"
    )
    assert run.stdout == ""


def test_an_sqlite_file_that_cannot_be_opened_names_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", f"sqlite:///{tmp_path}/missing/folder/g.db")
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "state"))
    assert cli.main(["db", "upgrade"]) == 2
    assert capsys.readouterr().err == (
        f"giftcards: cannot reach the SQLite database {tmp_path}/missing/folder/g.db (cannot open the file): "
        "check GIFTCARDS_DATABASE_URL and that its folder exists and is writable\n"
    )
