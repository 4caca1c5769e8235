"""`giftcards store add|list`, and `giftcards token --store|--no-stores`: on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from sqlalchemy import create_engine, text

from app import cli
from tests.conftest import ROOT

LINE = re.compile(r"^(\S+) +(.+?) +(\S+)$")


@pytest.fixture
def environment(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated database (the fixture's), a state directory and the checked-in policy."""
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", database_url)
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GIFTCARDS_PERMISSIONS_FILE", str(ROOT / "permissions.yaml"))
    return database_url


def stored(database_url: str) -> list[tuple[str, str | None]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text("SELECT id, name FROM stores ORDER BY id"))]
    finally:
        engine.dispose()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit code, standard output, and the command's own lines on standard error (not the log's)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, "".join(line for line in err.splitlines(keepends=True) if line.startswith("giftcards:"))


def token_claims(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    code, out, err = run(capsys, "token", "--sub", "office", "--role", "backoffice", *argv)
    assert (code, err) == (0, "")
    claims: dict[str, object] = jwt.decode(out.strip(), options={"verify_signature": False})
    return claims


# --- store add / list -----------------------------------------------------------------------------


def test_add_prints_the_store_and_stores_it(environment: str, capsys: pytest.CaptureFixture[str]) -> None:
    # when a store is added with a name
    code, out, err = run(capsys, "store", "add", "north", "--name", "North Shop")
    # then it is printed (id, name, when) and stored beside the default store
    assert (code, err) == (0, "")
    match = LINE.match(out.rstrip("\n"))
    assert match is not None, out
    assert match.group(1, 2) == ("north", "North Shop")
    added = datetime.fromisoformat(match.group(3))
    assert abs(added - datetime.now(UTC)) < timedelta(minutes=1)
    assert stored(environment) == [("default", None), ("north", "North Shop")]


def test_list_shows_every_store_by_id_in_aligned_columns(
    environment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # given two stores added after the default one, out of order, one without a name
    assert run(capsys, "store", "add", "zeta", "--name", "Z")[0] == 0
    assert run(capsys, "store", "add", "a.long-store_id")[0] == 0
    # when the stores are listed
    code, out, err = run(capsys, "store", "list")
    # then each is one line, by id, with its name (or -) and when it was added, columns aligned
    assert (code, err) == (0, "")
    lines = out.splitlines()
    columns = [match.group(1, 2) for match in map(LINE.match, lines) if match is not None]
    assert columns == [("a.long-store_id", "-"), ("default", "-"), ("zeta", "Z")]
    # the names start in one column, and so do the times (every line is as long)
    assert (
        len({line.index(name, len(store_id)) for line, (store_id, name) in zip(lines, columns, strict=True)})
        == 1
    )
    assert len({len(line) for line in lines}) == 1


def test_adding_an_existing_store_is_refused_and_changes_nothing(
    environment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "store", "add", "north", "--name", "North")[0] == 0
    for store_id in ("north", "default"):
        code, out, err = run(capsys, "store", "add", store_id, "--name", "Again")
        assert (code, out) == (1, "")
        assert err == f"giftcards: store {store_id} already exists\n"
    assert stored(environment) == [("default", None), ("north", "North")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["north shop"], "'north shop' is not a store id: 1 to 64 letters", id="space-in-id"),
        pytest.param(["s" * 65], "is not a store id", id="id-too-long"),
        pytest.param(
            ["north", "--name", " "], "' ' is not a store name: 1 to 128 printable", id="blank-name"
        ),
        pytest.param(["north", "--name", "a\tb"], "is not a store name", id="unprintable-name"),
        pytest.param(["north", "--name", "n" * 129], "is not a store name", id="name-too-long"),
    ],
)
def test_a_bad_id_or_name_is_refused_with_what_is_expected(
    environment: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["store", "add", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert stored(environment) == [("default", None)]


def test_an_unmigrated_database_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", f"sqlite:///{tmp_path}/new.db")
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "state"))
    for argv in (["store", "list"], ["store", "add", "north"]):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (2, "")
        assert "giftcards db upgrade" in err


# --- token --store / --no-stores ------------------------------------------------------------------


def test_token_without_a_store_option_has_no_claim(
    environment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "stores" not in token_claims(capsys)


def test_token_names_the_stores_given(environment: str, capsys: pytest.CaptureFixture[str]) -> None:
    # given two stores besides the default one
    assert run(capsys, "store", "add", "north")[0] == 0
    assert run(capsys, "store", "add", "south")[0] == 0
    # when a token is asked for two of them (one twice) and the default store
    claims = token_claims(
        capsys, "--store", "south", "--store", "north", "--store", "south", "--store", "default"
    )
    # then its stores claim names each once, in the order given
    assert claims["stores"] == ["south", "north", "default"]


def test_no_stores_is_an_empty_claim(environment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert token_claims(capsys, "--no-stores")["stores"] == []


def test_token_refuses_a_store_the_database_does_not_know(
    environment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "store", "add", "north")[0] == 0
    code, out, err = run(
        capsys, "token", "--sub", "x", "--role", "admin", "--store", "north", "--store", "ghost"
    )
    assert (code, out) == (2, "")
    assert err == (
        "giftcards: --store ghost: the database has no such store; add it with `giftcards store add ghost`\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--store", "two words"], "'two words' is not a store id", id="malformed-id"),
        pytest.param(["--store", ""], "'' is not a store id", id="empty-id"),
        pytest.param(["--store", "north", "--no-stores"], "not allowed with argument", id="both-options"),
    ],
)
def test_token_store_arguments_are_checked(
    environment: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["token", "--sub", "x", "--role", "admin", *argv])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
