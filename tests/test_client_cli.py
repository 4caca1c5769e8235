"""`giftcards client add|list|remove`: clients of the token endpoint, edited into permissions.yaml."""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path

import pytest

from app import cli
from app.auth.clients import add_client, remove_client
from app.auth.secrets import hash_client_secret, verify_client_secret
from app.errors import ConfigurationError
from app.policy_file import load_policy
from tests.conftest import ROOT

ORIGINAL = (ROOT / "permissions.yaml").read_text()
# Everything above the (empty) client list of the checked-in file.
HEAD = ORIGINAL.rpartition("clients: []")[0]


@pytest.fixture
def policy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "permissions.yaml"
    shutil.copy(ROOT / "permissions.yaml", path)
    monkeypatch.setenv("GIFTCARDS_PERMISSIONS_FILE", str(path))
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    return path


def add(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    """Run `client add`; return the printed (client id, secret)."""
    assert cli.main(["client", "add", *argv]) == 0
    out, err = capsys.readouterr()
    printed = dict(line.split(": ", 1) for line in out.splitlines())
    assert set(printed) == {"client_id", "client_secret"}
    assert printed["client_secret"] not in err
    return printed["client_id"], printed["client_secret"]


def test_add_prints_the_secret_once_and_writes_only_its_hash(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # when a client is added
    client_id, secret = add(capsys, "pos-1", "--role", "pos")
    # then its secret is long, URL-safe and shown once, and the file holds a hash that verifies
    assert client_id == "pos-1"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", secret)
    text = policy_file.read_text()
    assert secret not in text
    client = load_policy(policy_file).clients["pos-1"]
    assert client.roles == ("pos",)
    assert client.secret_hash.startswith("$argon2id$")
    assert verify_client_secret(secret, client.secret_hash)
    assert not verify_client_secret(secret[:-1], client.secret_hash)
    # and the hand-written rest of the file is untouched, comments included
    assert text.startswith(HEAD)
    assert text[len(HEAD) :].startswith("clients:\n  - id: pos-1\n")


def test_every_secret_is_new(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, first = add(capsys, "a", "--role", "pos")
    _, second = add(capsys, "b", "--role", "pos")
    assert first != second


def test_clients_are_added_in_order_with_roles_and_description(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add(capsys, "pos-1", "--role", "pos")
    first_entry = policy_file.read_text()[len(HEAD) :]
    add(
        capsys,
        "office.tools",
        "--role",
        "backoffice",
        "--role",
        "pos",
        "--role",
        "pos",
        "--description",
        "Back office: reports, refunds",
    )
    text = policy_file.read_text()
    assert text.startswith(HEAD + first_entry)  # the first entry is not rewritten
    policy = load_policy(policy_file)
    assert list(policy.clients) == ["pos-1", "office.tools"]
    assert policy.clients["office.tools"].roles == ("backoffice", "pos")
    assert "description: 'Back office: reports, refunds'" in text


def test_list_shows_ids_and_roles_never_hashes(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["client", "list"]) == 0
    assert capsys.readouterr().out == ""
    add(capsys, "pos-1", "--role", "pos")
    add(capsys, "ops", "--role", "backoffice", "--role", "admin")
    assert cli.main(["client", "list"]) == 0
    out = capsys.readouterr().out
    assert out == "pos-1\tpos\nops\tbackoffice admin\n"
    assert "argon2" not in out


def test_add_writes_the_stores_given_and_list_shows_them(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given one client with no stores named, then one naming two stores (one twice)
    add(capsys, "pos-1", "--role", "pos")
    add(capsys, "north-till", "--role", "pos", "--store", "north", "--store", "south", "--store", "north")
    # then the second entry carries the stores once each, the first none
    text = policy_file.read_text()
    assert "  - id: north-till\n" in text and "    stores: [north, south]\n" in text
    assert text.count("stores:") == 1 + ORIGINAL.count("stores:")
    policy = load_policy(policy_file)
    assert policy.clients["north-till"].stores == ("north", "south")
    assert policy.clients["pos-1"].stores is None
    # and the list shows them, the first without any
    assert cli.main(["client", "list"]) == 0
    assert capsys.readouterr().out == "pos-1\tpos\nnorth-till\tpos\tstores: north south\n"


def test_list_shows_an_entry_with_no_store(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_client(policy_file, "nowhere", ["pos"], stores=[])
    assert load_policy(policy_file).clients["nowhere"].stores == ()
    assert cli.main(["client", "list"]) == 0
    assert capsys.readouterr().out == "nowhere\tpos\tstores: (none)\n"


@pytest.mark.parametrize(
    ("stores", "message"),
    [
        pytest.param(["north", "two words"], "'two words' is not a store id: 1 to 64", id="malformed"),
        pytest.param([f"s{n}" for n in range(101)], "at most 100 stores", id="too-many"),
    ],
)
def test_add_refuses_bad_stores(stores: list[str], message: str, policy_file: Path) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        add_client(policy_file, "pos-1", ["pos"], stores=stores)
    assert policy_file.read_text() == ORIGINAL


def test_the_command_refuses_a_malformed_store(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["client", "add", "pos-1", "--role", "pos", "--store", "a/b"])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "'a/b' is not a store id" in err
    assert policy_file.read_text() == ORIGINAL


@pytest.mark.parametrize(
    ("name", "roles", "message"),
    [
        pytest.param("pos-1", ["cashier"], "unknown role(s) cashier", id="unknown-role"),
        pytest.param("pos-1", ["pos", "root"], "unknown role(s) root", id="one-unknown-role"),
        pytest.param("", ["pos"], "is not a client id", id="empty-id"),
        pytest.param("pos 1", ["pos"], "is not a client id", id="space"),
        pytest.param("pos:1", ["pos"], "is not a client id", id="colon"),
        pytest.param("-pos", ["pos"], "is not a client id", id="leading-dash"),
        pytest.param("kassé", ["pos"], "is not a client id", id="non-ascii"),
        pytest.param("pos-1\n", ["pos"], "is not a client id", id="newline"),
        pytest.param("x" * 65, ["pos"], "is not a client id", id="too-long"),
    ],
)
def test_add_refuses_bad_names_and_roles(
    name: str, roles: list[str], message: str, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    role_options = [option for role in roles for option in ("--role", role)]
    assert cli.main(["client", "add", *role_options, "--", name]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no secret was made up and shown
    assert message in err
    assert policy_file.read_text() == ORIGINAL


def test_add_refuses_a_duplicate_id(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add(capsys, "pos-1", "--role", "pos")
    before = policy_file.read_text()
    assert cli.main(["client", "add", "pos-1", "--role", "backoffice"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "already exists" in err
    assert policy_file.read_text() == before


def test_add_needs_a_role(policy_file: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["client", "add", "pos-1"])
    assert exit_info.value.code == 2


def test_add_refuses_a_policy_file_that_does_not_load(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = ORIGINAL.replace(
        "permissions: [FindGiftCardByCode, UsePhysicalGiftCardCodes,",
        "permissions: [FindGiftCardByKode, UsePhysicalGiftCardCodes,",
    )
    assert broken != ORIGINAL
    policy_file.write_text(broken)
    assert cli.main(["client", "add", "pos-1", "--role", "pos"]) == 2
    assert "unknown permission 'FindGiftCardByKode'" in capsys.readouterr().err
    assert policy_file.read_text() == broken


def test_remove_takes_only_that_clients_lines(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add(capsys, "pos-1", "--role", "pos")
    add(capsys, "ops", "--role", "admin")
    ops_hash = load_policy(policy_file).clients["ops"].secret_hash
    assert cli.main(["client", "remove", "pos-1"]) == 0
    assert list(load_policy(policy_file).clients) == ["ops"]
    assert load_policy(policy_file).clients["ops"].secret_hash == ops_hash
    # removing the last one gives back the file as it was
    assert cli.main(["client", "remove", "ops"]) == 0
    assert policy_file.read_text() == ORIGINAL
    assert cli.main(["client", "remove", "ops"]) == 2
    assert "no client 'ops'" in capsys.readouterr().err


def test_the_file_keeps_its_mode_and_no_temporary_file_is_left(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_file.chmod(0o640)
    add(capsys, "pos-1", "--role", "pos")
    assert stat.S_IMODE(policy_file.stat().st_mode) == 0o640
    assert [p.name for p in policy_file.parent.iterdir() if p.name.endswith(".tmp")] == []


# --- other hand-written layouts -------------------------------------------------------------------

A_HASH = hash_client_secret("not-a-real-secret-" + "x" * 30)

LAYOUTS = {
    "no-clients-key": HEAD,
    "empty-list-with-comment": HEAD + "clients: []  # none yet\n",
    "no-final-newline": HEAD + "clients: []",
    "block-list-with-comments": HEAD
    + (
        "clients:\n"
        "    # the shop\n"
        f"    -   id: shop\n        secret_hash: '{A_HASH}'  # rotated in May\n"
        "        roles:\n          - storefront\n"
        "    # end of list\n"
    ),
    "indentless-list": HEAD + f"clients:\n- id: shop\n  secret_hash: '{A_HASH}'\n  roles: [storefront]\n",
    "flow-list": HEAD + f"clients: [{{id: shop, secret_hash: '{A_HASH}', roles: [storefront]}}]\n",
    "windows-line-endings": (HEAD + "clients: []\n").replace("\n", "\r\n"),
}


@pytest.mark.parametrize("text", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_add_and_remove_in_any_layout(text: str, tmp_path: Path) -> None:
    # given a hand-written policy file
    path = tmp_path / "permissions.yaml"
    path.write_bytes(text.encode())
    before = load_policy(path)
    # when a client is added
    added = add_client(path, "pos-1", ["pos"])
    edited = path.read_bytes().decode()
    # then it loads with the new client besides the old ones, in the file's own line endings
    after = load_policy(path)
    assert dict(after.clients) == {**before.clients, "pos-1": after.clients["pos-1"]}
    assert verify_client_secret(added.secret, after.clients["pos-1"].secret_hash)
    assert ("\r\n" in edited) == ("\r\n" in text)
    # and every comment of the original is still there
    comments = [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]
    assert all(comment in edited for comment in comments)
    # when it is removed again, the clients are as before
    remove_client(path, "pos-1")
    assert dict(load_policy(path).clients) == dict(before.clients)


def test_unknown_client_cannot_be_removed(tmp_path: Path) -> None:
    path = tmp_path / "permissions.yaml"
    path.write_text(ORIGINAL)
    with pytest.raises(ConfigurationError, match="no client 'ghost'"):
        remove_client(path, "ghost")
