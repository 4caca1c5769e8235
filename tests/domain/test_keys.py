"""Keyrings and key rotation: parsing, sealing under the current keys, and rows that keep working
under old keys while a rotation moves them, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from app.config import Settings
from app.domain import keys
from app.domain.codes import LEGACY_LOOKUP_KEY_ID, CodeVault, parse_keyring
from app.enums import CodeType
from app.errors import ConfigurationError
from app.http import create_app
from app.services import Services, build_services
from tests.conftest import _key, answered, error_codes, gql, make_settings

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()
SHORT = base64.b64encode(b"s" * 16).decode()


def _vault(**values: Any) -> CodeVault:
    return CodeVault.from_settings(Settings(**values))


# --- keyrings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ring", "message"),
    [
        (KEY_A, "must be 'id:base64key"),  # a bare key where a ring is expected
        (f"k1:{KEY_A},", "must be 'id:base64key"),  # an empty entry
        (f"k 1:{KEY_A}", "must be 'id:base64key"),
        (f"{'k' * 33}:{KEY_A}", "must be 'id:base64key"),
        (f":{KEY_A}", "must be 'id:base64key"),
        (f"k1:{KEY_A},k1:{KEY_B}", "key id 'k1' appears more than once"),
        (f"k1:{KEY_A},k2:{KEY_A}", "key 'k2' is the same key as another id"),
        (f"k1:{SHORT}", r"\(k1\) must decode to 32 bytes, got 16"),
        ("k1:not*base64", r"\(k1\) is not valid base64"),
        ("k1:", r"\(k1\) must decode to 32 bytes, got 0"),
    ],
)
@pytest.mark.parametrize("setting", ["GIFTCARDS_CODE_ENCRYPTION_KEYS", "GIFTCARDS_CODE_LOOKUP_KEYS"])
def test_bad_keyrings_are_refused_naming_the_setting_never_the_key(setting, ring, message):
    values = {"code_encryption_keys": f"e1:{KEY_B}", "code_lookup_keys": f"l1:{KEY_B}"}
    values["code_encryption_keys" if setting.endswith("ENCRYPTION_KEYS") else "code_lookup_keys"] = ring
    with pytest.raises(ConfigurationError, match=message) as caught:
        _vault(**values)
    assert str(caught.value).startswith(setting)
    for key in (KEY_A, KEY_B, SHORT):
        assert key not in str(caught.value)


def test_a_single_lookup_key_is_the_legacy_ring_of_one():
    single = _vault(code_lookup_key=KEY_A, code_encryption_keys=f"e1:{KEY_B}")
    ring = _vault(code_lookup_keys=f"{LEGACY_LOOKUP_KEY_ID}:{KEY_A}", code_encryption_keys=f"e1:{KEY_B}")
    assert single.lookup_key_ids == ring.lookup_key_ids == ("lk1",)
    assert single.lookup_hashes("GC49288330")[0] == ring.lookup_hashes("GC49288330")[0]
    assert single.keyed_digests(b"p", b"d")[0] == ring.keyed_digests(b"p", b"d")[0]


def test_the_single_lookup_key_and_the_lookup_keyring_are_not_both_accepted():
    with pytest.raises(ConfigurationError, match="not both") as caught:
        _vault(code_lookup_key=KEY_A, code_lookup_keys=f"l1:{KEY_B}", code_encryption_keys=f"e1:{KEY_B}")
    assert KEY_A not in str(caught.value) and KEY_B not in str(caught.value)


def test_missing_keys_are_a_configuration_error():
    with pytest.raises(ConfigurationError, match="not configured"):
        _vault(code_encryption_keys=f"e1:{KEY_B}")
    with pytest.raises(ConfigurationError, match="not configured"):
        _vault(code_lookup_key=KEY_A)


def test_the_first_key_of_each_ring_seals_and_every_lookup_key_is_tried():
    old = _vault(code_lookup_keys=f"l1:{KEY_A}", code_encryption_keys=f"e1:{KEY_A}")
    both = _vault(code_lookup_keys=f"l2:{KEY_B},l1:{KEY_A}", code_encryption_keys=f"e2:{KEY_B},e1:{KEY_A}")
    sealed = both.seal("GC49288330", CodeType.PHYSICAL)
    assert (sealed.key_id, sealed.lookup_key_id) == ("e2", "l2")
    assert sealed.lookup_hashes == (sealed.lookup_hash, old.lookup_hashes("GC49288330")[0])
    assert both.lookup_hashes("GC49288330") == sealed.lookup_hashes
    # a row sealed under the old keys opens, and reseals under the current ones
    stored = old.seal("GC49288330", CodeType.PHYSICAL)
    assert both.open(stored.ciphertext, stored.key_id, "PHYSICAL") == "GC49288330"
    moved = both.reseal(stored.ciphertext, stored.key_id, CodeType.PHYSICAL)
    assert (moved.key_id, moved.lookup_key_id, moved.lookup_hash) == ("e2", "l2", sealed.lookup_hash)
    assert both.open(moved.ciphertext, moved.key_id, "PHYSICAL") == "GC49288330"
    assert both.keyed_digests(b"p", b"d") == (
        both.keyed_digests(b"p", b"d")[0],
        old.keyed_digests(b"p", b"d")[0],
    )


def test_parse_keyring_keeps_the_given_order():
    assert list(parse_keyring("X", f" b:{KEY_B} , a:{KEY_A}")) == ["b", "a"]


# --- rotation while the server runs -----------------------------------------------------------

ADD = """mutation Add($giftcard: GiftCardAddInput!, $key: String) {
  giftcardAdd(giftcard: $giftcard, idempotencyKey: $key) { id codes { id codeType code } } }"""
EDIT = """mutation Edit($giftcard: GiftCardEditInput!) {
  giftcardEdit(giftcard: $giftcard) { id codes { id codeType code } } }"""
LOOKUP = """query Find($code: String!) { giftcard(code: $code) { results { id codes { codeType code } } } }"""
TRANS = """mutation T($trans: GiftCardTransInput!) {
  giftcardTransAdd(trans: $trans) { giftcardId balance } }"""
HISTORY = """query H($filter: GiftCardTransactionFilter) {
  giftcardTransactions(first: 100, filter: $filter) { edges { node { giftcardId amount } } } }"""
RESERVE = """mutation R($count: Int!) {
  giftcardReserveCodes(count: $count, agency: "Print Co", requestName: "rotation") { codes } }"""
PIN = "4321"
CARDS = 5
NEW_KEYS = {
    "code_lookup_key": None,
    "code_lookup_keys": f"lk2:{_key(21)},lk1:{_key(1)}",
    "code_encryption_keys": f"t2:{_key(22)},t1:{_key(2)}",
}


class _Stop(Exception):
    pass


def _stop_after(rows: int) -> Callable[[int, int], None]:
    def progress(done: int, total: int) -> None:
        if done >= rows:
            raise _Stop

    return progress


def _key_ids(services: Services, table: str) -> dict[tuple[str, str], int]:
    with services.engine.connect() as connection:
        rows = connection.execute(
            text(f"SELECT key_id, lookup_key_id, COUNT(*) FROM {table} GROUP BY key_id, lookup_key_id")
        )
        return {(row[0], row[1]): row[2] for row in rows}


@pytest.fixture
def rotated(settings: Settings, tmp_path: Path) -> Iterator[tuple[Services, TestClient]]:
    """Services and a client holding the new keys first and the old ones after them."""
    new = make_settings(settings.database_url, tmp_path, **NEW_KEYS)
    services = build_services(new)
    with TestClient(create_app(new, services)) as client:
        yield services, client
    services.engine.dispose()


def test_rows_under_old_and_new_keys_work_while_a_rotation_runs(client, mint, services, rotated):
    admin = mint(roles=["admin"], sub="operator")
    printer = mint(permissions=["ReserveGiftCardCodes", "CreateGiftCard"], sub="printer")
    # given cards, a revoked code, reserved stock and an idempotent response, all under the old keys
    cards = {}
    for n in range(CARDS):
        body = gql(
            client,
            ADD,
            {
                "giftcard": {
                    "physicalCode": f"ROTPHYS{n:05d}",
                    "physicalPin": PIN,
                    "externalCode": f"ROTEXTN{n:05d}",
                }
            },
            token=admin,
        )
        cards[n] = answered(body, "giftcardAdd")["id"]
    replayed = {"giftcard": {"externalCode": "ROTIDEMPOTENT1"}, "key": "add-once"}
    first_response = answered(gql(client, ADD, replayed, token=admin), "giftcardAdd")
    answered(
        gql(client, EDIT, {"giftcard": {"id": cards[0], "externalCode": "ROTEXTNREPLACE"}}, token=admin),
        "giftcardEdit",
    )  # ROTEXTN00000 is now revoked
    reserved = answered(gql(client, RESERVE, {"count": 4}, token=printer), "giftcardReserveCodes")["codes"]
    code_rows = sum(_key_ids(services, "giftcard_codes").values())
    assert _key_ids(services, "giftcard_codes") == {("t1", "lk1"): code_rows}

    # when servers run with the new keys first and a rotation stops after its first batch
    new_services, new_client = rotated
    with pytest.raises(_Stop):
        keys.rotate(new_services.key_rows, new_services.vault, batch_size=4, progress=_stop_after(4))

    # then one batch is under the new keys and the rest still under the old ones
    assert _key_ids(services, "giftcard_codes") == {("t2", "lk2"): 4, ("t1", "lk1"): code_rows - 4}
    assert _key_ids(services, "reserved_codes") == {("t1", "lk1"): 4}
    moved = {row[0] for row in _rows(services, "SELECT id FROM giftcard_codes WHERE key_id = 't2'")}
    assert len(moved) == 4

    # and every code is found, shown, spent and defended from either half
    pos = mint(roles=["pos"], sub="till")
    for n, card_id in cards.items():
        physical = f"ROTPHYS{n:05d}"
        (found,) = answered(gql(new_client, LOOKUP, {"code": physical}, token=admin), "giftcard")["results"]
        assert found["id"] == card_id and {"codeType": "PHYSICAL", "code": physical} in found["codes"]
        trans = {"transType": "ADD", "amount": "1.00", "codeType": "PHYSICAL", "code": physical, "pin": PIN}
        assert answered(gql(new_client, TRANS, {"trans": trans}, token=pos), "giftcardTransAdd") == {
            "giftcardId": card_id,
            "balance": "1.00",
        }
        by_code = {"filter": {"codeType": "PHYSICAL", "code": physical}}
        history = answered(gql(new_client, HISTORY, by_code, token=admin), "giftcardTransactions")
        assert [edge["node"]["giftcardId"] for edge in history["edges"]] == [card_id]
        # the same code on another card, new or edited, is a conflict
        duplicate = gql(new_client, ADD, {"giftcard": {"physicalCode": physical}}, token=admin)
        assert error_codes(duplicate) == ["CONFLICT"]
        other = cards[(n + 1) % CARDS]
        edit = gql(new_client, EDIT, {"giftcard": {"id": other, "physicalCode": physical}}, token=admin)
        assert error_codes(edit) == ["CONFLICT"]
        # the card's own code given again keeps its row
        before = {code["codeType"]: code["id"] for code in found_codes(new_client, admin, card_id)}
        again = answered(
            gql(
                new_client,
                EDIT,
                {"giftcard": {"id": card_id, "physicalCode": physical, "physicalPin": PIN}},
                token=admin,
            ),
            "giftcardEdit",
        )
        assert {code["codeType"]: code["id"] for code in again["codes"]} == before
    revoked = gql(new_client, ADD, {"giftcard": {"externalCode": "ROTEXTN00000"}}, token=admin)
    assert error_codes(revoked) == ["CONFLICT"]  # a revoked code under the old key never comes back
    # reserved stock under the old keys still belongs to its owner
    taken = gql(new_client, ADD, {"giftcard": {"physicalCode": reserved[0]}}, token=admin)
    assert error_codes(taken) == ["CONFLICT"] and "reserved" in taken["errors"][0]["message"]
    answered(gql(new_client, ADD, {"giftcard": {"physicalCode": reserved[0]}}, token=printer), "giftcardAdd")
    answered(gql(new_client, RESERVE, {"count": 2}, token=printer), "giftcardReserveCodes")
    # an idempotent retry stored before the new lookup key answers as it did
    assert answered(gql(new_client, ADD, replayed, token=admin), "giftcardAdd") == first_response

    # when the rotation runs again, it moves only what is left
    left = keys.key_status(new_services.key_rows, new_services.vault, new_services.pins).stale
    assert left > 0
    assert keys.rotate(new_services.key_rows, new_services.vault, batch_size=3) == left

    # then every code row is under the new keys, and everything still works
    assert set(_key_ids(services, "giftcard_codes")) == {("t2", "lk2")}
    assert set(_key_ids(services, "reserved_codes")) == {("t2", "lk2")}
    for n, card_id in cards.items():
        body = gql(new_client, LOOKUP, {"code": f"ROTPHYS{n:05d}"}, token=admin)
        assert [card["id"] for card in answered(body, "giftcard")["results"]] == [card_id]
    status = keys.key_status(new_services.key_rows, new_services.vault, new_services.pins)
    assert status.stale == 0 and status.missing() == []
    removable = {(use.ring, use.key_id) for use in status.removable()}
    # the old keys still seal and digest an idempotent response (it expires): neither may go yet
    assert removable == set()
    (old_aead,) = [use for use in status.keys if use.key_id == "t1"]
    assert old_aead.rows == {"idempotency_keys": 1}
    (old_lookup,) = [use for use in status.keys if use.key_id == "lk1"]
    assert old_lookup.rows == {"idempotency_keys": 1}


def found_codes(client: TestClient, token: str, card_id: str) -> list[dict[str, Any]]:
    body = gql(
        client,
        """query($id: ID!) { giftcard(id: $id) { results { codes { id codeType } } } }""",
        {"id": card_id},
        token=token,
    )
    (card,) = answered(body, "giftcard")["results"]
    return list(card["codes"])


def _rows(services: Services, sql: str) -> list[tuple[Any, ...]]:
    with services.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def test_rotation_refuses_rows_under_an_encryption_key_not_in_the_ring(seed, services, settings, tmp_path):
    seed({CodeType.PHYSICAL: "ROTMISSING01"})
    # given a ring that dropped the key the row was sealed with
    dropped = make_settings(settings.database_url, tmp_path, code_encryption_keys=f"t2:{_key(22)}")
    vault = CodeVault.from_settings(dropped)
    # then rotation names the key and the command, and writes nothing
    with pytest.raises(ConfigurationError, match=r"encryption key 't1' \(1 rows\).*giftcards keys rotate"):
        keys.rotate(services.key_rows, vault)
    assert _key_ids(services, "giftcard_codes") == {("t1", "lk1"): 1}
    assert [use.key_id for use in keys.key_status(services.key_rows, vault, services.pins).missing()] == [
        "t1"
    ]


def test_rotation_rehashes_rows_under_a_lookup_key_that_left_the_ring(seed, services, settings, tmp_path):
    card_id = seed({CodeType.PHYSICAL: "ROTLOOKUP001"})
    dropped = make_settings(
        settings.database_url, tmp_path, code_lookup_key=None, code_lookup_keys=f"lk2:{_key(21)}"
    )
    vault = CodeVault.from_settings(dropped)
    hashes = vault.lookup_hashes("ROTLOOKUP001")
    assert services.card_store.find_by_code_hash(hashes, ("default",)) == []  # lost until the row is rehashed
    assert [use.key_id for use in keys.key_status(services.key_rows, vault, services.pins).missing()] == [
        "lk1"
    ]
    assert keys.rotate(services.key_rows, vault) == 1
    assert [match.card.id for match in services.card_store.find_by_code_hash(hashes, ("default",))] == [
        card_id
    ]
    assert keys.key_status(services.key_rows, vault, services.pins).missing() == []


def test_rotation_with_nothing_to_move_reports_zero(services):
    calls: list[tuple[int, int]] = []
    assert keys.rotate(services.key_rows, services.vault, progress=lambda *call: calls.append(call)) == 0
    assert calls == [(0, 0)]


def test_rotation_batch_size_must_be_positive(services):
    with pytest.raises(ValueError, match="positive"):
        keys.rotate(services.key_rows, services.vault, batch_size=0)


# --- a new key in two steps: staged (known everywhere), then current ---------------------------


def test_a_staged_key_is_known_but_never_current():
    ring = parse_keyring("X", f"+new:{KEY_B},old:{KEY_A}")
    assert list(ring) == ["old", "new"]  # the current key first, the staged one after
    vault = _vault(code_encryption_keys=f"e1:{KEY_A},+e2:{KEY_B}", code_lookup_keys=f"+l2:{KEY_B},l1:{KEY_A}")
    assert (vault.active_key_id, vault.lookup_key_id) == ("e1", "l1")
    assert vault.staged_key_ids == {"e2"} and vault.staged_lookup_key_ids == {"l2"}
    with pytest.raises(ConfigurationError, match="every key is staged"):
        parse_keyring("X", f"+new:{KEY_B}")


def test_mid_rollout_no_code_is_issued_twice(mint, services, settings, tmp_path):
    # given a server that knows the new lookup key as staged, and one that already made it current
    staged = make_settings(
        settings.database_url,
        tmp_path,
        code_lookup_key=None,
        code_lookup_keys=f"lk1:{_key(1)},+lk2:{_key(21)}",
    )
    promoted = make_settings(
        settings.database_url,
        tmp_path,
        code_lookup_key=None,
        code_lookup_keys=f"lk2:{_key(21)},lk1:{_key(1)}",
    )
    admin = mint(roles=["admin"], sub="operator")
    old_services, new_services = build_services(staged), build_services(promoted)
    try:
        with (
            TestClient(create_app(staged, old_services)) as old,
            TestClient(create_app(promoted, new_services)) as new,
        ):
            # when the promoted server issues a code (hashed under lk2)
            first = gql(new, ADD, {"giftcard": {"physicalCode": "ROLLOUT00001"}}, token=admin)
            assert "errors" not in first
            # then the staged server finds it, and refuses to issue it again, as the other does
            found = gql(old, LOOKUP, {"code": "ROLLOUT00001"}, token=admin)
            assert [card["id"] for card in found["data"]["giftcard"]["results"]] == [
                first["data"]["giftcardAdd"]["id"]
            ]
            for server in (old, new):
                again = gql(server, ADD, {"giftcard": {"physicalCode": "rollout-00001"}}, token=admin)
                assert error_codes(again) == ["CONFLICT"]
            # and what the staged server issues is hashed under its current key, known to both
            second = gql(old, ADD, {"giftcard": {"physicalCode": "ROLLOUT00002"}}, token=admin)
            assert error_codes(
                gql(new, ADD, {"giftcard": {"physicalCode": "ROLLOUT00002"}}, token=admin)
            ) == ["CONFLICT"]
            assert "errors" not in second
    finally:
        old_services.engine.dispose()
        new_services.engine.dispose()
    # and status calls the staged key staged, not removable
    status = keys.key_status(old_services.key_rows, old_services.vault, old_services.pins)
    lk2 = next(use for use in status.keys if use.ring == keys.LOOKUP and use.key_id == "lk2")
    assert lk2.staged and lk2 not in status.removable()


def test_an_old_lookup_key_is_in_use_while_stored_requests_were_digested_under_it(
    client, mint, services, settings, tmp_path
):
    # given a keyed request answered under the lookup key lk1
    admin = mint(roles=["admin"], sub="operator")
    first = gql(client, ADD, {"giftcard": {"physicalCode": "DIGEST000001"}, "key": "order-9"}, token=admin)
    assert "errors" not in first
    # when lk2 becomes current and every code row is moved to it
    rotated = build_services(make_settings(settings.database_url, tmp_path, **NEW_KEYS))
    try:
        keys.rotate(rotated.key_rows, rotated.vault)
        status = keys.key_status(rotated.key_rows, rotated.vault, rotated.pins)
        lk1 = next(use for use in status.keys if use.ring == keys.LOOKUP and use.key_id == "lk1")
        # then lk1 still digests a stored request, so it may not be removed yet
        assert lk1.rows == {"idempotency_keys": 1} and lk1 not in status.removable()
        # and the retry, on a server holding both keys, is answered as the first time
        with TestClient(create_app(rotated.settings, rotated)) as server:
            again = gql(
                server, ADD, {"giftcard": {"physicalCode": "DIGEST000001"}, "key": "order-9"}, token=admin
            )
        assert again == first
    finally:
        rotated.engine.dispose()


def test_requests_stored_before_their_key_was_recorded_keep_every_lookup_key(client, mint, services):
    gql(
        client,
        ADD,
        {"giftcard": {"physicalCode": "DIGEST000002"}, "key": "order-10"},
        token=mint(roles=["admin"]),
    )
    with services.engine.begin() as connection:
        connection.execute(text("UPDATE idempotency_keys SET request_key_id = NULL"))
    status = keys.key_status(services.key_rows, services.vault, services.pins)
    lookup = [use for use in status.keys if use.ring == keys.LOOKUP]
    assert lookup and all(use.rows.get("idempotency_keys") == 1 for use in lookup)
