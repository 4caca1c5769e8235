"""Idempotency: canonical encoding, key limits, and run/replay with work, guards and retention."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.domain.idempotency import MAX_KEY_LENGTH, encode
from app.domain.mutations import Mutation, MutationRunner
from app.errors import BadUserInputError, ConflictError, NotFoundError, UnauthenticatedError
from app.graphql.schema import api_names
from app.policy import ANONYMOUS, Principal
from app.store import idempotency as key_store
from tests.conftest import gql, transaction

ALICE = Principal("alice", frozenset({"GiftCardTransUse", "ListGiftCards"}))


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Answer:
    giftcard_id: int  # the audit trail names the card an answer is about
    note: str


class Work:
    """A unit of work that counts its runs."""

    def __init__(self, answer: Answer) -> None:
        self.answer, self.runs = answer, 0

    def __call__(self, session) -> Answer:
        self.runs += 1
        return self.answer


def _count(services, sql: str, **params: Any) -> int:
    with services.engine.connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def _audit(services) -> list[tuple[str, str, str, int | None]]:
    with services.engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text("SELECT action, outcome, subject, giftcard_id FROM audit_events ORDER BY id")
            ).all()
        ]


# --- encoding -------------------------------------------------------------------------------------


def test_encode_is_canonical_json_of_a_dataclass_or_plain_data():
    assert encode(Answer(3, "x")) == b'{"giftcard_id":3,"note":"x"}'
    assert encode({"b": [1, 2], "a": None}) == b'{"a":null,"b":[1,2]}'


def test_encode_writes_times_enums_and_sets_as_plain_values():
    value = {
        "at": datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        "on": date(2030, 1, 2),
        "colour": Colour.RED,
        "colours": frozenset({Colour.RED, Colour.BLUE}),
        "names": {"b", "a"},
    }
    assert encode(value) == (
        b'{"at":"2030-01-02T03:04:05+00:00","colour":"red","colours":["blue","red"],'
        b'"names":["a","b"],"on":"2030-01-02"}'
    )


def test_encode_refuses_what_it_cannot_write_back():
    with pytest.raises(TypeError, match=r"^cannot encode bytes$"):
        encode({"raw": b"x"})


def test_a_dataclass_type_itself_is_not_taken_for_an_instance():
    with pytest.raises(TypeError, match=r"^cannot encode type$"):
        encode(Answer)


# --- run and replay ------------------------------------------------------------------------------


@pytest.fixture
def idempotency(services) -> MutationRunner:
    return services.mutations


@pytest.mark.parametrize("key", ["k", "k" * MAX_KEY_LENGTH, "ключ 1"])
def test_keys_of_1_to_128_printable_characters_are_accepted(idempotency, key):
    work = Work(Answer(1, "a"))
    assert idempotency.run(ALICE, Mutation("op", {"n": 1}, Answer, key), work) == Answer(1, "a")
    assert idempotency.replay(ALICE, Mutation("op", {"n": 1}, Answer, key)) == Answer(1, "a")


@pytest.mark.parametrize("key", ["", "k" * (MAX_KEY_LENGTH + 1), "line\nbreak"])
def test_other_keys_are_refused_before_anything_runs(idempotency, key):
    work = Work(Answer(1, "a"))
    for call in (
        lambda: idempotency.run(ALICE, Mutation("op", {}, Answer, key), work),
        lambda: idempotency.replay(ALICE, Mutation("op", {}, Answer, key)),
    ):
        with pytest.raises(BadUserInputError) as refused:
            call()
        assert api_names(str(refused.value.field)) == "idempotencyKey"
        assert (
            api_names(refused.value.message) == f"idempotencyKey: 1 to {MAX_KEY_LENGTH} printable characters"
        )
    assert work.runs == 0


def test_without_a_key_the_work_runs_every_time_and_is_audited(idempotency, services):
    work = Work(Answer(1, "a"))
    assert idempotency.run(ALICE, Mutation("op", {}, Answer, None), work) == Answer(1, "a")
    assert idempotency.run(ALICE, Mutation("op", {}, Answer, None), work) == Answer(1, "a")
    assert idempotency.replay(ALICE, Mutation("op", {}, Answer, None)) is None
    assert work.runs == 2
    assert _audit(services) == [("op", "OK", "alice", 1)] * 2
    assert _count(services, "SELECT COUNT(*) FROM idempotency_keys") == 0


def test_a_keyed_retry_replays_the_stored_answer_once_run(idempotency, services):
    # given a keyed request that ran
    work = Work(Answer(7, "first"))
    assert idempotency.run(ALICE, Mutation("op", {"n": 1}, Answer, "k1"), work) == Answer(7, "first")

    # when it is sent again, through run or replay
    work.answer = Answer(8, "second")
    again = idempotency.run(ALICE, Mutation("op", {"n": 1}, Answer, "k1"), work)
    asked = idempotency.replay(ALICE, Mutation("op", {"n": 1}, Answer, "k1"))

    # then both answer as the first time, the work ran once, and each answer is audited
    assert again == asked == Answer(7, "first")
    assert work.runs == 1
    assert _audit(services) == [("op", "OK", "alice", 7), *[("op", "REPLAYED", "alice", 7)] * 2]


def test_an_unused_key_has_nothing_to_replay(idempotency, services):
    idempotency.run(ALICE, Mutation("op", {}, Answer, "k1"), Work(Answer(1, "a")))
    assert idempotency.replay(ALICE, Mutation("op", {}, Answer, "k2")) is None
    assert idempotency.replay(Principal("bob", ALICE.permissions), Mutation("op", {}, Answer, "k1")) is None


@pytest.mark.parametrize(
    ("principal", "operation", "request_"),
    [
        (ALICE, "op", {"n": 2}),
        (ALICE, "other", {"n": 1}),
        (Principal("alice", frozenset({"GiftCardTransUse"})), "op", {"n": 1}),
    ],
    ids=["other input", "other operation", "fewer permissions"],
)
def test_a_used_key_with_another_request_is_a_conflict(idempotency, principal, operation, request_):
    work = Work(Answer(1, "a"))
    idempotency.run(ALICE, Mutation("op", {"n": 1}, Answer, "k1"), work)

    for call in (
        lambda: idempotency.run(principal, Mutation(operation, request_, Answer, "k1"), work),
        lambda: idempotency.replay(principal, Mutation(operation, request_, Answer, "k1")),
    ):
        with pytest.raises(ConflictError) as refused:
            call()
        assert api_names(str(refused.value.field)) == "idempotencyKey"
        assert api_names(refused.value.message) == "idempotencyKey: already used for a different request"
    assert work.runs == 1


def test_keys_belong_to_their_subject(idempotency):
    work = Work(Answer(1, "a"))
    idempotency.run(ALICE, Mutation("op", {}, Answer, "k1"), work)
    idempotency.run(Principal("bob", ALICE.permissions), Mutation("op", {}, Answer, "k1"), work)
    assert work.runs == 2


def test_a_failed_request_keeps_nothing_under_its_key(idempotency, services):
    def failing(session):
        raise NotFoundError("id: no such thing", field="id")

    with pytest.raises(NotFoundError):
        idempotency.run(ALICE, Mutation("op", {}, Answer, "k1"), failing)
    assert _count(services, "SELECT COUNT(*) FROM idempotency_keys") == 0
    assert idempotency.run(ALICE, Mutation("op", {}, Answer, "k1"), Work(Answer(2, "b"))) == Answer(2, "b")


@pytest.mark.parametrize("key", [None, "k1"])
def test_a_guard_refusal_keeps_what_the_guard_wrote_and_nothing_else(idempotency, services, key):
    # given a guard that writes (as a wrong PIN is counted) and then refuses
    def guard(session):
        session.execute(
            text(
                "INSERT INTO audit_events (occurred_at, action, outcome) "
                "VALUES (CURRENT_TIMESTAMP, 'guarded', 'COUNTED')"
            )
        )
        return ConflictError("no: guarded", field="no")

    work = Work(Answer(1, "a"))
    with pytest.raises(ConflictError, match="guarded"):
        idempotency.run(ALICE, Mutation("op", {}, Answer, key), work, guard)

    # then the work did not run, the guard's write stayed, and the key is free for a retry
    assert work.runs == 0
    assert _audit(services) == [("guarded", "COUNTED", None, None)]
    assert _count(services, "SELECT COUNT(*) FROM idempotency_keys") == 0
    assert idempotency.run(ALICE, Mutation("op", {}, Answer, key), work, lambda session: None) == Answer(
        1, "a"
    )


def test_a_replay_does_not_run_the_guard(idempotency):
    idempotency.run(ALICE, Mutation("op", {}, Answer, "k1"), Work(Answer(1, "a")), lambda session: None)

    def guard(session):
        raise AssertionError("the guard ran for a replay")

    assert idempotency.run(ALICE, Mutation("op", {}, Answer, "k1"), Work(Answer(2, "b")), guard) == Answer(
        1, "a"
    )


def test_keys_older_than_the_retention_are_forgotten_when_a_new_one_is_stored(idempotency, services):
    # given two keys, one just past the retention time and one just inside it
    for key in ("old", "recent", "stays"):
        idempotency.run(ALICE, Mutation("op", {}, Answer, key), Work(Answer(1, key)))
    retention = services.settings.idempotency_retention_hours
    with services.engine.begin() as connection:
        for key, age in (
            ("old", timedelta(hours=retention, minutes=1)),
            ("recent", timedelta(hours=retention, minutes=-1)),
        ):
            connection.execute(
                text("UPDATE idempotency_keys SET created_at = :t WHERE key = :k"),
                {"t": datetime.now(UTC) - age, "k": key},
            )

    # when another key is stored
    idempotency.run(ALICE, Mutation("op", {}, Answer, "new"), Work(Answer(2, "b")))

    # then only the old one is gone
    with services.engine.connect() as connection:
        keys = set(connection.execute(text("SELECT key FROM idempotency_keys")).scalars())
    assert keys == {"recent", "stays", "new"}


def test_keys_are_forgotten_by_their_age_in_utc_whatever_the_local_zone(idempotency, services, monkeypatch):
    import time

    # given a key just inside the retention time
    idempotency.run(ALICE, Mutation("op", {}, Answer, "recent"), Work(Answer(1, "a")))
    retention = services.settings.idempotency_retention_hours
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE idempotency_keys SET created_at = :t WHERE key = 'recent'"),
            {"t": datetime.now(UTC) - timedelta(hours=retention, minutes=-1)},
        )

    # when another key is stored where the local clock is far ahead of UTC
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        idempotency.run(ALICE, Mutation("op", {}, Answer, "new"), Work(Answer(2, "b")))
    finally:
        monkeypatch.undo()
        time.tzset()

    # then the recent key is kept
    with services.engine.connect() as connection:
        keys = set(connection.execute(text("SELECT key FROM idempotency_keys")).scalars())
    assert keys == {"recent", "new"}


def test_the_stored_answer_is_sealed_and_records_the_lookup_key(idempotency, services):
    idempotency.run(ALICE, Mutation("op", {}, Answer, "k1"), Work(Answer(1, "SECRETNOTE")))
    with services.engine.connect() as connection:
        row = connection.execute(
            text("SELECT operation, key_id, request_key_id, response FROM idempotency_keys")
        ).one()
    assert (row[0], row[1], row[2]) == ("op", services.vault.active_key_id, services.vault.lookup_key_id)
    assert b"SECRETNOTE" not in bytes(row[3])


def test_the_stored_request_digest_is_the_keyed_digest_of_a_fixed_document(idempotency, services):
    # stored digests must still match after an upgrade, or every retry across it is a CONFLICT
    idempotency.run(ALICE, Mutation("op", Answer(1, "a"), Answer, "k1"), Work(Answer(1, "a")))
    document = encode(
        {
            "operation": "op",
            "permissions": sorted(ALICE.permissions),
            "request": {"giftcard_id": 1, "note": "a"},
        }
    )
    with services.engine.connect() as connection:
        stored = bytes(connection.execute(text("SELECT request_hash FROM idempotency_keys")).scalar_one())
    assert stored == services.vault.keyed_digests(b"idempotency", document)[0]


def test_a_key_is_stamped_in_utc_whatever_the_local_zone(idempotency, services, monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        before = datetime.now(UTC)
        idempotency.run(ALICE, Mutation("op", {}, Answer, "k1"), Work(Answer(1, "a")))
    finally:
        monkeypatch.undo()
        time.tzset()
    with transaction(services) as session:
        stored = key_store.find_key(session, ("default", "alice", "k1"))
        assert stored is not None
        stamped = stored.created_at
    stamped = stamped if stamped.tzinfo else stamped.replace(tzinfo=UTC)
    assert before <= stamped <= datetime.now(UTC)


def _lose_the_race(monkeypatch):
    """The looks for the key's stored row: the claim comes first, and only the unique key refusing
    it (another request committed the key first, or waited-for one did) makes the loser look."""
    real, calls = key_store.find_key, []

    def find_key(session, ident):
        calls.append(ident[-1])
        return real(session, ident)

    monkeypatch.setattr(key_store, "find_key", find_key)
    return calls


def test_a_request_that_loses_the_race_for_its_key_answers_as_the_winner(idempotency, services, monkeypatch):
    # given a keyed request that ran, and a retry that claims the key before looking for it
    idempotency.run(ALICE, Mutation("op", {"n": 1}, Answer, "k1"), Work(Answer(5, "winner")))
    calls = _lose_the_race(monkeypatch)
    work = Work(Answer(6, "loser"))

    # when the retry runs
    answer = idempotency.run(ALICE, Mutation("op", {"n": 1}, Answer, "k1"), work)

    # then it answers as the winner did, without running, and is audited as a replay
    assert answer == Answer(5, "winner")
    assert (work.runs, calls) == (0, ["k1"])  # one look, after the claim was refused
    assert _audit(services)[-1] == ("op", "REPLAYED", "alice", 5)


def test_a_request_that_loses_the_race_with_other_input_is_a_conflict(idempotency, monkeypatch):
    idempotency.run(ALICE, Mutation("op", {"n": 1}, Answer, "k1"), Work(Answer(5, "winner")))
    _lose_the_race(monkeypatch)

    with pytest.raises(ConflictError) as refused:
        idempotency.run(ALICE, Mutation("op", {"n": 2}, Answer, "k1"), Work(Answer(6, "loser")))
    assert api_names(refused.value.message) == "idempotencyKey: already used for a different request"


def test_a_key_taken_but_not_found_again_is_a_conflict_while_it_runs(idempotency, monkeypatch):
    # given a used key that the looks for it do not find (the claim is refused by the unique key)
    idempotency.run(ALICE, Mutation("op", {"n": 1}, Answer, "k1"), Work(Answer(5, "winner")))
    monkeypatch.setattr(key_store, "find_key", lambda session, ident: None)
    work = Work(Answer(6, "loser"))

    # when a retry runs, then it is refused as still running, without running
    with pytest.raises(ConflictError) as refused:
        idempotency.run(ALICE, Mutation("op", {"n": 1}, Answer, "k1"), work)
    assert refused.value.message == "idempotency_key: a request with this key is still running"
    assert (refused.value.field, work.runs) == ("idempotency_key", 0)


@pytest.mark.parametrize("key", [None, "k1"])
def test_an_integrity_error_of_the_work_itself_is_not_taken_for_a_race(idempotency, services, key):
    def clashing(session):
        for _ in range(2):
            session.execute(text("INSERT INTO clash_probe VALUES (1)"))
        return Answer(1, "a")

    with services.engine.begin() as connection:
        connection.execute(text("CREATE TABLE clash_probe (id INTEGER PRIMARY KEY)"))
    try:
        with pytest.raises(IntegrityError):
            idempotency.run(ALICE, Mutation("op", {}, Answer, key), clashing)
    finally:
        with services.engine.begin() as connection:
            connection.execute(text("DROP TABLE clash_probe"))


def test_an_anonymous_caller_shares_no_key_with_any_subject(idempotency):
    # given keys of subjects that look like placeholders
    for subject in ("XXXX", "-", "anonymous"):
        idempotency.run(Principal(subject), Mutation("op", {}, Answer, "k1"), Work(Answer(1, "a")))

    def refused(session):
        raise UnauthenticatedError("a bearer token is required")

    # then a caller without a token finds none of them: its request runs (and fails) as new
    assert idempotency.replay(ANONYMOUS, Mutation("op", {}, Answer, "k1")) is None
    with pytest.raises(UnauthenticatedError):
        idempotency.run(ANONYMOUS, Mutation("op", {}, Answer, "k1"), refused)


# --- answers stored before the entity shapes changed -----------------------------------------------

# What the code path before one-shape-per-entity stored: canonical JSON (sorted keys, no spaces) of
# its request dataclasses and of its CardView / TransactionView answers, written out by hand here so
# that a change of shape or encoding shows up as a failing replay.
OLD_CARD_REQUEST = (
    '{"codes":{"add_personal_code":false,"external_code":null,"external_code_expires_on":null,'
    '"personal_code_expires_on":null,"physical_code":"OLDFORMAT0001","physical_code_expires_on":null,'
    '"physical_pin":null},"currency":null,"details":{"expires_at":null,"note":null,"ref_no":null,'
    '"source_id":null,"usable_from":null},"member_id":null}'
)
OLD_CARD_ANSWER = (
    '{"balance":0,"codes":[{"code":"OLDFORMAT0001","code_type":"PHYSICAL","expires_on":"2031-05-06",'
    '"id":41,"is_masked":false}],"created_at":"2026-11-30T09:15:00.123456+00:00","created_by":"office",'
    '"currency":"EUR","expires_at":null,"id":40,"member_id":null,"note":null,"ref_no":"R-1",'
    '"source_id":null,"state":"PENDING","updated_at":"2026-11-30T09:15:00.123456+00:00",'
    '"usable_from":"2027-01-01T00:00:00+00:00"}'
)
OLD_TRANS_REQUEST = (
    '{"allow_partial":false,"amount":"-1.50","authorize_only":false,"code":"OLDFORMAT0002",'
    '"code_type":"PHYSICAL","giftcard_id":null,"note":null,"pin":null,"ref_no":null,"source_id":null,'
    '"trans_type":"USE"}'
)
OLD_TRANS_ANSWER = (
    '{"amount":-150,"authorized_amount":null,"available_balance":850,"balance":850,'
    '"balance_after":850,"balance_before":1000,"created_at":"2026-11-30T09:16:00+00:00","currency":"EUR",'
    '"giftcard_id":40,"hold_expires_at":null,"id":77,"note":null,"partial":false,"ref_no":null,'
    '"settled_at":"2026-11-30T09:16:00+00:00","source_id":null,"status":"COMPLETED","trans_type":"USE"}'
)


def _store_old_key(services, subject, permissions, operation, request_json, answer_json):
    """Write a key row as the old code path did: the keyed digest of the request document, the
    answer sealed to the subject and key."""
    document = (
        f'{{"operation":"{operation}","permissions":{json.dumps(sorted(permissions), separators=(",", ":"))},'
        f'"request":{request_json}}}'
    ).encode()
    vault = services.vault
    key_id, sealed = vault.seal_blob(answer_json.encode(), f"idempotency:{subject}:old-key".encode())
    with services.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO idempotency_keys (subject, key, operation, request_hash, request_key_id, "
                "response, key_id, created_at) VALUES (:s, 'old-key', :o, :h, :l, :r, :k, :t)"
            ),
            {
                "s": subject,
                "o": operation,
                "h": vault.keyed_digests(b"idempotency", document)[0],
                "l": vault.lookup_key_id,
                "r": sealed,
                "k": key_id,
                "t": datetime.now(UTC),
            },
        )


def test_a_card_answer_stored_in_the_old_format_replays(client, mint, services):
    # given a giftcardAdd answer stored under a key before the change
    _store_old_key(services, "office", ["CreateGiftCard"], "giftcardAdd", OLD_CARD_REQUEST, OLD_CARD_ANSWER)

    # when the same request is sent again with that key
    body = gql(
        client,
        """mutation($g: GiftCardAddInput!) { giftcardAdd(giftcard: $g, idempotencyKey: "old-key") {
          id currency state balance createdAt usableFrom refNo
          codes { id codeType code expiresOn isMasked } } }""",
        {"g": {"physicalCode": "OLDFORMAT0001"}},
        token=mint(permissions=["CreateGiftCard"], sub="office"),
    )

    # then it answers as the stored answer says, and creates nothing
    assert body == {
        "data": {
            "giftcardAdd": {
                "id": "40",
                "currency": "EUR",
                "state": "PENDING",
                "balance": "0.00",
                "createdAt": "2026-11-30T09:15:00.123456+00:00",
                "usableFrom": "2027-01-01T00:00:00+00:00",
                "refNo": "R-1",
                "codes": [
                    {
                        "id": "41",
                        "codeType": "PHYSICAL",
                        "code": "OLDFORMAT0001",
                        "expiresOn": "2031-05-06",
                        "isMasked": False,
                    }
                ],
            }
        }
    }
    assert _count(services, "SELECT COUNT(*) FROM giftcards") == 0


def test_a_transaction_answer_stored_in_the_old_format_replays(client, mint, services):
    # given a giftcardTransAdd answer stored under a key before the change
    permissions = ["GiftCardTransUse", "UsePhysicalGiftCardCodes"]
    _store_old_key(services, "till", permissions, "giftcardTransAdd", OLD_TRANS_REQUEST, OLD_TRANS_ANSWER)

    # when the same debit is sent again with that key
    body = gql(
        client,
        """mutation($t: GiftCardTransInput!) { giftcardTransAdd(trans: $t, idempotencyKey: "old-key") {
          id giftcardId transType status amount currency balance availableBalance balanceBefore
          balanceAfter partial createdAt settledAt } }""",
        {"t": {"transType": "USE", "amount": "-1.50", "codeType": "PHYSICAL", "code": "OLDFORMAT0002"}},
        token=mint(permissions=permissions, sub="till"),
    )

    # then it answers as the stored answer says, and writes no ledger row
    assert body == {
        "data": {
            "giftcardTransAdd": {
                "id": "77",
                "giftcardId": "40",
                "transType": "USE",
                "status": "COMPLETED",
                "amount": "-1.50",
                "currency": "EUR",
                "balance": "8.50",
                "availableBalance": "8.50",
                "balanceBefore": "10.00",
                "balanceAfter": "8.50",
                "partial": False,
                "createdAt": "2026-11-30T09:16:00+00:00",
                "settledAt": "2026-11-30T09:16:00+00:00",
            }
        }
    }
    assert _count(services, "SELECT COUNT(*) FROM giftcard_transactions") == 0
