"""`giftcards keys status|rotate`: development adds keys to the state file, production only moves
rows; key settings; nothing secret in the output."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from app import cli
from app.config import load_settings
from app.demo import WELL_KNOWN
from app.domain.codes import normalise
from app.state_file import STATE_FILE
from tests.conftest import ROOT

CODES = [
    normalise(code) for card in WELL_KNOWN for code in (card.physical, card.external, card.personal) if code
]
# Random keys: production refuses guessable ones such as 32 equal bytes.
KEY_1 = "UDYVZ6IZkbQBMiU2T60ctOJWamcjdtuPjqJVAE2XQm4="
KEY_2 = "OWPgpatrZWxpoyhgytfll83VqdWSNo4lsFtVD7xPrQE="
KEY_3 = "K5TrCeQCUZFUTlF8peTBXe+/DOAYMKh6lWaNuBVRPew="
SHORT_KEY = base64.b64encode(b"x" * 16).decode()


def _assert_nothing_secret(text: str, *keys: str) -> None:
    for code in CODES:
        assert code[:-4] not in text
    for key in keys:
        assert key not in text


def _state(tmp_path: Path) -> dict[str, str]:
    state: dict[str, str] = json.loads((tmp_path / "state" / STATE_FILE).read_text())
    return state


def _ids(keyring: str) -> list[str]:
    return [entry.partition(":")[0] for entry in keyring.split(",")]


@pytest.fixture
def development(tmp_path, monkeypatch):
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", f"sqlite:///{tmp_path}/keys.db")
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GIFTCARDS_PERMISSIONS_FILE", str(ROOT / "permissions.yaml"))
    assert cli.main(["db", "upgrade"]) == 0
    assert cli.main(["demo-data", "--cards", "20"]) == 0
    return tmp_path


@pytest.fixture
def production(tmp_path, monkeypatch, development):
    state = _state(development)
    # The same database, now run as production: its secrets in the environment (production
    # refuses secrets found in a development state file, so the state directory is another one).
    monkeypatch.setenv("GIFTCARDS_ENV", "production")
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(tmp_path / "production-state"))
    monkeypatch.setenv("GIFTCARDS_JWT_ISSUER", "giftcards")
    monkeypatch.setenv("GIFTCARDS_JWT_AUDIENCE", "giftcards-api")
    monkeypatch.setenv("GIFTCARDS_JWT_SECRET", state["jwt_secret"])
    monkeypatch.setenv("GIFTCARDS_PIN_PEPPER", state["pin_pepper"])
    monkeypatch.setenv("GIFTCARDS_PIN_KEYS", state["pin_keys"])
    monkeypatch.setenv("GIFTCARDS_CODE_LOOKUP_KEY", state["code_lookup_key"])
    monkeypatch.setenv("GIFTCARDS_CODE_ENCRYPTION_KEYS", state["code_encryption_keys"])
    return state


def test_development_rotate_adds_keys_first_and_moves_every_row(development, capsys):
    before = _state(development)
    # when keys are rotated in small batches
    assert cli.main(["keys", "rotate", "--batch-size", "7"]) == 0
    out, err = capsys.readouterr()
    # then new keys lead the state file's rings and the old ones follow
    after = _state(development)
    assert _ids(after["code_encryption_keys"]) == ["dev2", "dev1"]
    assert _ids(after["code_lookup_keys"]) == ["lk2", "lk1"]
    assert after["code_encryption_keys"].endswith(before["code_encryption_keys"])
    assert after["code_lookup_keys"].endswith(before["code_lookup_key"])
    assert (development / "state" / STATE_FILE).stat().st_mode & 0o777 == 0o600
    # and every row moved, with progress on stderr
    rows = 6 + 20 * 3
    assert f"{rows} rows moved" in out and "encryption key dev2 and lookup key lk2" in out
    assert f"keys rotate: 7/{rows} rows" in err and f"keys rotate: {rows}/{rows} rows (100%)" in err
    assert "encryption key dev1 is no longer used" in out and "lookup key lk1 is no longer used" in out
    _assert_nothing_secret(out + err, *before.values(), *after.values())
    # and the server's settings now read the rings from the state file
    settings = load_settings({"GIFTCARDS_STATE_DIR": str(development / "state")})
    assert settings.code_lookup_key is None and settings.code_lookup_keys is not None
    # and status shows every row under the new keys, the old keys free to go
    assert cli.main(["keys", "status"]) == 0
    out = capsys.readouterr().out
    assert "dev2         current      giftcard_codes=66" in out
    assert "dev1         old          no rows  (may be removed)" in out
    assert "lk1          old          no rows  (may be removed)" in out
    assert "code rows to rotate: 0" in out
    # and a second rotation adds another pair of keys
    assert cli.main(["keys", "rotate"]) == 0
    assert _ids(_state(development)["code_encryption_keys"]) == ["dev3", "dev2", "dev1"]
    # and no code is in the database files, old pages included
    stored = b"".join(path.read_bytes() for path in development.glob("keys.db*"))
    for code in CODES:
        assert code[:-4].encode() not in stored


def test_development_lookups_work_after_rotation(development, capsys):
    from datetime import date

    from app.services import build_services
    from app.store.ledger import LedgerStore

    assert cli.main(["keys", "rotate"]) == 0
    services = build_services(
        load_settings(
            {
                "GIFTCARDS_STATE_DIR": str(development / "state"),
                "GIFTCARDS_DATABASE_URL": f"sqlite:///{development}/keys.db",
            }
        )
    )
    try:
        for card in WELL_KNOWN:
            if card.physical:
                hashes = services.vault.lookup_hashes(normalise(card.physical))
                (found,) = LedgerStore(services.engine).live_codes(hashes, "PHYSICAL", ("default",))
                assert found.expires_on is None or found.expires_on >= date.today()
    finally:
        services.engine.dispose()


def test_production_rotate_never_writes_secrets_and_says_what_to_do(
    production, development, capsys, monkeypatch
):
    state_file = development / "state" / STATE_FILE
    written = state_file.read_bytes()
    # when nothing is under an old key
    assert cli.main(["keys", "rotate"]) == 0
    out = capsys.readouterr().out
    # then it explains the procedure and changes nothing
    assert "put a new key first in GIFTCARDS_CODE_ENCRYPTION_KEYS and GIFTCARDS_CODE_LOOKUP_KEYS" in out
    assert "GIFTCARDS_CODE_LOOKUP_KEYS=NEWID:NEWKEY,lk1:KEY" in out
    assert state_file.read_bytes() == written
    # when the operator puts new keys first and runs it again
    monkeypatch.delenv("GIFTCARDS_CODE_LOOKUP_KEY")
    monkeypatch.setenv("GIFTCARDS_CODE_LOOKUP_KEYS", f"p1:{KEY_1},lk1:{production['code_lookup_key']}")
    monkeypatch.setenv("GIFTCARDS_CODE_ENCRYPTION_KEYS", f"p1:{KEY_2},{production['code_encryption_keys']}")
    assert cli.main(["keys", "rotate", "--batch-size", "50"]) == 0
    out, err = capsys.readouterr()
    # then every row moves to them, and the old keys may leave the environment
    assert "66 rows moved" in out and "encryption key p1 and lookup key p1" in out
    assert "key dev1 is no longer used: it may be removed from GIFTCARDS_CODE_ENCRYPTION_KEYS" in out
    assert state_file.read_bytes() == written
    _assert_nothing_secret(out + err, KEY_1, KEY_2, *production.values())
    # and once the old keys are gone, everything is still readable
    monkeypatch.setenv("GIFTCARDS_CODE_LOOKUP_KEYS", f"p1:{KEY_1}")
    monkeypatch.setenv("GIFTCARDS_CODE_ENCRYPTION_KEYS", f"p1:{KEY_2}")
    assert cli.main(["keys", "status"]) == 0
    assert "code rows to rotate: 0" in capsys.readouterr().out


def test_status_names_a_key_rows_use_that_the_ring_lost(production, monkeypatch, capsys):
    monkeypatch.setenv("GIFTCARDS_CODE_ENCRYPTION_KEYS", f"p1:{KEY_2}")
    assert cli.main(["keys", "status"]) == 1
    out, err = capsys.readouterr()
    assert "dev1         NOT IN RING  giftcard_codes=66" in out
    assert "encryption key 'dev1' (66 rows) is not in GIFTCARDS_CODE_ENCRYPTION_KEYS" in err
    assert "giftcards keys rotate" in err
    # and rotation refuses before writing anything
    assert cli.main(["keys", "rotate"]) == 2
    assert "encryption key 'dev1'" in capsys.readouterr().err
    _assert_nothing_secret(out + err, KEY_2, *production.values())


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "GIFTCARDS_CODE_ENCRYPTION_KEYS",
            f"p1:{SHORT_KEY}",
            "GIFTCARDS_CODE_ENCRYPTION_KEYS (p1) must decode to 32 bytes, got 16",
        ),
        ("GIFTCARDS_CODE_ENCRYPTION_KEYS", f"p1:{KEY_1},p1:{KEY_2}", "key id 'p1' appears more than once"),
        ("GIFTCARDS_CODE_ENCRYPTION_KEYS", KEY_1, "must be 'id:base64key"),
        ("GIFTCARDS_CODE_LOOKUP_KEYS", f"a:{KEY_1},b:{KEY_1}", "key 'b' is the same key as another id"),
    ],
)
def test_bad_keyrings_stop_the_command_without_echoing_keys(
    production, monkeypatch, capsys, variable, value, message
):
    if variable == "GIFTCARDS_CODE_LOOKUP_KEYS":
        monkeypatch.delenv("GIFTCARDS_CODE_LOOKUP_KEY")
    monkeypatch.setenv(variable, value)
    assert cli.main(["keys", "status"]) == 2
    err = capsys.readouterr().err
    assert message in err
    _assert_nothing_secret(err, KEY_1, KEY_2, SHORT_KEY, *production.values())


def test_both_lookup_settings_are_refused(production, monkeypatch, capsys):
    monkeypatch.setenv("GIFTCARDS_CODE_LOOKUP_KEYS", f"lk2:{KEY_3}")
    assert cli.main(["keys", "status"]) == 2
    assert "set GIFTCARDS_CODE_LOOKUP_KEYS or GIFTCARDS_CODE_LOOKUP_KEY, not both" in capsys.readouterr().err


@pytest.mark.parametrize("size", ["0", "-1", "10001", "ten"])
def test_bad_batch_sizes(size, capsys):
    with pytest.raises(SystemExit):
        cli.main(["keys", "rotate", "--batch-size", size])
    assert "batch size" in capsys.readouterr().err


# --- the key settings ---------------------------------------------------------------------------


def test_production_accepts_a_lookup_keyring_instead_of_the_single_key(tmp_path):
    environ = {
        "GIFTCARDS_ENV": "production",
        "GIFTCARDS_JWT_SECRET": "WSKMWIEjoMK-IGB51NO5pi4gYXRFq0LlWRMOq6fO34mXJyvRnW-LwrHRJ_wv-MCn",
        "GIFTCARDS_JWT_ISSUER": "giftcards",
        "GIFTCARDS_JWT_AUDIENCE": "giftcards-api",
        "GIFTCARDS_PIN_KEYS": f"pk1:{KEY_3}",
        "GIFTCARDS_CODE_LOOKUP_KEYS": f"l2:{KEY_1},lk1:{KEY_2}",
        "GIFTCARDS_CODE_ENCRYPTION_KEYS": f"k1:{KEY_1}",
        "GIFTCARDS_STATE_DIR": str(tmp_path),
    }
    settings = load_settings(environ)
    assert settings.code_lookup_key is None and settings.code_lookup_keys is not None
    assert not (tmp_path / STATE_FILE).exists()


def test_development_lookup_keyring_from_the_environment_is_used_alone(tmp_path):
    settings = load_settings(
        {"GIFTCARDS_STATE_DIR": str(tmp_path), "GIFTCARDS_CODE_LOOKUP_KEYS": f"l9:{KEY_1}"}
    )
    # the state file's single key does not join it (that would be two lookup settings at once)
    assert settings.code_lookup_key is None
    assert settings.code_lookup_keys is not None
    assert settings.code_lookup_keys.get_secret_value() == f"l9:{KEY_1}"


def test_development_rotate_wraps_pins_and_status_shows_their_keys(development, capsys):
    from app.demo import WELL_KNOWN

    pins = sum(1 for card in WELL_KNOWN if card.pin)
    # when keys are rotated, the PIN ring gains a key too and every keyed PIN is wrapped under it
    assert cli.main(["keys", "rotate"]) == 0
    out, err = capsys.readouterr()
    assert _ids(_state(development)["pin_keys"]) == ["pk2", "pk1"]
    assert f"{pins} PINs wrapped; every keyed PIN is under PIN key pk2" in out
    assert f"keys rotate: {pins}/{pins} PINs (100%)" in err
    # then status shows both keys in use (a wrapped PIN needs both) and nothing left to rotate
    assert cli.main(["keys", "status"]) == 0
    out = capsys.readouterr().out
    assert "PIN keys (GIFTCARDS_PIN_KEYS, current first):" in out
    assert f"pk2          current      giftcard_codes={pins}" in out
    assert f"pk1          old          giftcard_codes={pins}" in out
    assert "PINs to rotate: 0" in out and "PINs still argon2" in out and out.rstrip().endswith("0")
    _assert_nothing_secret(out + err, *_state(development).values())


def test_development_fills_in_a_pin_key_for_a_state_file_without_one(tmp_path):
    # given a state file written before PIN keys existed
    first = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path)})
    state = json.loads((tmp_path / STATE_FILE).read_text())
    del state["pin_keys"]
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    # when settings are loaded again, a PIN key is added and everything else kept
    settings = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path)})
    assert settings.pin_keys is not None and settings.pin_keys.get_secret_value().startswith("pk1:")
    assert settings.jwt_secret == first.jwt_secret and settings.pin_pepper == first.pin_pepper
    again = load_settings({"GIFTCARDS_STATE_DIR": str(tmp_path)})
    assert again.pin_keys == settings.pin_keys


def test_development_rotate_refuses_while_a_server_runs_on_the_state_file(development, capsys):
    from starlette.testclient import TestClient

    from app.http import create_app

    state_file = development / "state" / STATE_FILE
    before = state_file.read_bytes()
    settings = load_settings(
        {
            "GIFTCARDS_STATE_DIR": str(development / "state"),
            "GIFTCARDS_DATABASE_URL": f"sqlite:///{development}/keys.db",
            "GIFTCARDS_PERMISSIONS_FILE": str(ROOT / "permissions.yaml"),
        }
    )
    # given a server running on the state file's keys
    with TestClient(create_app(settings)):
        # when keys are rotated beside it, nothing changes and it says why
        assert cli.main(["keys", "rotate"]) == 1
        assert "a server is running on the keys" in capsys.readouterr().err
        assert state_file.read_bytes() == before
    # and once it has stopped, rotation goes ahead
    assert cli.main(["keys", "rotate"]) == 0
    assert state_file.read_bytes() != before
