"""The giftcards command: demo data, schema export, token arguments."""

from __future__ import annotations

import argparse

import pytest

from app import cli
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
