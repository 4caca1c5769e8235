"""idempotencyKey on mutations: replays, conflicts, scoping, failures, and concurrent retries."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from app.domain.card_requests import CodeChanges, NewCard
from app.enums import CodeType
from app.errors import ConflictError
from app.policy import Principal
from tests.conftest import error_codes, gql

ADD = """mutation Add($giftcard: GiftCardAddInput!, $key: String) {
  giftcardAdd(giftcard: $giftcard, idempotencyKey: $key) { id codes { codeType code } } }"""
BLOCK = (
    """mutation Block($id: ID!, $key: String) { giftcardBlock(id: $id, idempotencyKey: $key) { id state } }"""
)
EDIT = """mutation Edit($giftcard: GiftCardEditInput!, $key: String) {
  giftcardEdit(giftcard: $giftcard, idempotencyKey: $key) { id codes { codeType code } } }"""


def _count(services, table):
    with services.engine.connect() as connection:
        return connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_a_retry_returns_the_first_response_and_writes_nothing(client, mint, services):
    token = mint(permissions=["CreateGiftCard"])
    giftcard = {"addPersonalCode": True, "memberId": "M1", "physicalCode": "IDEMPHYS0001"}
    first = gql(client, ADD, {"giftcard": giftcard, "key": "order-1"}, token=token)
    again = gql(client, ADD, {"giftcard": giftcard, "key": "order-1"}, token=token)
    assert again == first  # including the generated PERSONAL code
    assert _count(services, "giftcards") == 1
    assert _count(services, "giftcard_codes") == 2


def test_the_same_key_with_other_input_is_a_conflict(client, mint, services):
    token = mint(permissions=["CreateGiftCard"])
    gql(client, ADD, {"giftcard": {"physicalCode": "IDEMPHYS0002"}, "key": "k"}, token=token)
    body = gql(client, ADD, {"giftcard": {"physicalCode": "IDEMPHYS0003"}, "key": "k"}, token=token)
    assert error_codes(body) == ["CONFLICT"] and body["errors"][0]["extensions"]["field"] == "idempotencyKey"
    assert _count(services, "giftcards") == 1


def test_the_same_key_on_another_mutation_is_a_conflict(client, mint, seed):
    card_id = seed({CodeType.PHYSICAL: "IDEMPHYS0004"})
    token = mint(roles=["admin"])
    gql(client, BLOCK, {"id": str(card_id), "key": "shared"}, token=token)
    body = gql(client, ADD, {"giftcard": {"physicalCode": "IDEMPHYS0005"}, "key": "shared"}, token=token)
    assert error_codes(body) == ["CONFLICT"]


def test_keys_are_scoped_to_the_token_subject(client, mint, services):
    giftcard = {"externalCode": "IDEMEXTN0001"}
    first = gql(
        client, ADD, {"giftcard": giftcard, "key": "k"}, token=mint(permissions=["CreateGiftCard"], sub="a")
    )
    assert "errors" not in first
    other = gql(
        client, ADD, {"giftcard": giftcard, "key": "k"}, token=mint(permissions=["CreateGiftCard"], sub="b")
    )
    assert error_codes(other) == ["CONFLICT"]  # a new request for b, refused because the code exists
    assert other["errors"][0]["extensions"]["field"] == "externalCode"


def test_a_failed_request_is_not_remembered(client, mint, seed):
    seed({CodeType.PHYSICAL: "IDEMTAKEN001"})
    token = mint(permissions=["CreateGiftCard"])
    body = gql(client, ADD, {"giftcard": {"physicalCode": "IDEMTAKEN001"}, "key": "retry-me"}, token=token)
    assert error_codes(body) == ["CONFLICT"]
    # the same key can be used once the input is fixed
    body = gql(client, ADD, {"giftcard": {"physicalCode": "IDEMFIXED001"}, "key": "retry-me"}, token=token)
    assert "errors" not in body


def test_replayed_state_change_and_edit(client, mint, seed, services):
    card_id = seed({CodeType.PHYSICAL: "IDEMPHYS0006"})
    token = mint(roles=["admin"])
    first = gql(client, BLOCK, {"id": str(card_id), "key": "b1"}, token=token)
    assert gql(client, BLOCK, {"id": str(card_id), "key": "b1"}, token=token) == first
    edit = {"id": str(card_id), "externalCode": "IDEMEXTN0002"}
    first = gql(client, EDIT, {"giftcard": edit, "key": "e1"}, token=token)
    assert gql(client, EDIT, {"giftcard": edit, "key": "e1"}, token=token) == first
    assert _count(services, "giftcard_events") == 2  # BLOCKED and CODE_ADDED, once each


@pytest.mark.parametrize("key", ["", "k" * 129, "tab\there"])
def test_bad_keys_are_refused(client, mint, key):
    body = gql(
        client,
        ADD,
        {"giftcard": {"physicalCode": "IDEMPHYS0007"}, "key": key},
        token=mint(permissions=["CreateGiftCard"]),
    )
    assert (
        error_codes(body) == ["BAD_USER_INPUT"]
        and body["errors"][0]["extensions"]["field"] == "idempotencyKey"
    )


def test_stored_responses_hold_no_plaintext_code(client, mint, services):
    body = gql(
        client,
        ADD,
        {"giftcard": {"addPersonalCode": True, "memberId": "M2"}, "key": "secret"},
        token=mint(permissions=["CreateGiftCard"]),
    )
    code = body["data"]["giftcardAdd"]["codes"][0]["code"]
    with services.engine.connect() as connection:
        stored = connection.execute(text("SELECT response FROM idempotency_keys")).scalar_one()
    assert code[:-4].encode() not in bytes(stored)


def test_two_concurrent_retries_write_once_and_answer_alike(services):
    # given two threads sending the same keyed request at the same moment
    principal = Principal("pos-1", frozenset({"CreateGiftCard"}))
    request = NewCard(codes=CodeChanges(physical_code="RACEPHYS0001", physical_pin="1234"))
    results: list[object] = []
    start = threading.Barrier(2)

    def send() -> None:
        start.wait()
        try:
            results.append(services.cards.create(principal, request, "race"))
        except ConflictError as exc:  # pragma: no cover - would be a bug
            results.append(exc)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then both got the same card, and only one was written
    assert len(results) == 2 and results[0] == results[1], results
    assert _count(services, "giftcards") == 1
    assert _count(services, "idempotency_keys") == 1


def test_the_stored_request_digest_is_keyed(client, mint, services):
    # an unkeyed digest of the input would let anyone with the database try every 4-digit PIN
    import hashlib

    from app.domain.idempotency import encode

    giftcard = {"physicalCode": "DIGESTPHYS01", "physicalPin": "1234"}
    gql(client, ADD, {"giftcard": giftcard, "key": "pin"}, token=mint(permissions=["CreateGiftCard"]))
    with services.engine.connect() as connection:
        stored = bytes(connection.execute(text("SELECT request_hash FROM idempotency_keys")).scalar_one())
    request = NewCard(codes=CodeChanges(physical_code="DIGESTPHYS01", physical_pin="1234"))
    assert stored != hashlib.sha256(b"giftcardAdd\0" + encode(request)).digest()
    assert stored != hashlib.sha256(encode(request)).digest()


def test_a_replay_with_fewer_permissions_is_refused(client, mint, seed):
    # given an admin's keyed edit whose response shows codes in full
    card_id = seed({CodeType.PHYSICAL: "NARROWPHYS01"})
    edit = {"id": str(card_id), "externalCode": "NARROWEXTN01"}
    admin = mint(roles=["admin"], sub="ops")
    assert "errors" not in gql(client, EDIT, {"giftcard": edit, "key": "n1"}, token=admin)
    # when the same subject replays the key with a token that may see less
    narrow = mint(permissions=["EditGiftCard"], sub="ops")
    body = gql(client, EDIT, {"giftcard": edit, "key": "n1"}, token=narrow)
    # then it is refused rather than shown the stored response
    assert error_codes(body) == ["CONFLICT"]
    assert "NARROW" not in str(body)
