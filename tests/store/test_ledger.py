"""The ledger store: addressing a live code, PIN counters, holds, the conditional balance change
and `ledger verify`, each checked against the rows it must and must not touch."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql

from app import cli, db
from app.domain.codes import normalise
from app.enums import CodeType, TransStatus, TransType
from app.store import ledger as store
from app.store import money
from tests.conftest import ROOT, fund, transaction

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
CEILING = 100_000
DEFAULT = ("default",)  # the stores of a token without a stores claim


def _entry(services, card_id, amount, status="AUTHORIZED", expires=NOW + timedelta(minutes=5)):
    with transaction(services) as session:
        return store.add_entry(
            session,
            {
                "giftcard_id": card_id,
                "trans_type": "USE" if amount < 0 else "ADD",
                "status": status,
                "amount": amount,
                "balance_before": 0,
                "balance_after": 0,
                "hold_expires_at": expires,
                "created_at": NOW,
            },
        ).id


def _balances(services):
    with services.engine.connect() as connection:
        return dict(connection.execute(text("SELECT id, balance FROM giftcards")).all())


def _change(services, card_id, amount, ceiling=CEILING):
    with transaction(services) as session:
        return store.change_balance(session, card_id, amount, NOW, ceiling)


def _code_row(services, card_id):
    with services.engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT id, failed_pin_attempts, pin_locked_until, pin_hash, pin_key_ids "
                "FROM giftcard_codes WHERE giftcard_id = :id AND code_type = 'PHYSICAL'"
            ),
            {"id": card_id},
        ).one()


# --- change_balance -----------------------------------------------------------------------------


@pytest.fixture
def three(seed, services):
    """Three funded cards: 10.00, 20.00 and 30.00."""
    ids = [seed({CodeType.PHYSICAL: f"STORELEDGER{n}"}) for n in range(3)]
    for n, card_id in enumerate(ids, start=1):
        fund(services.engine, card_id, 1000 * n)
    return ids


def test_a_debit_changes_its_card_alone(services, three):
    assert _change(services, three[1], -500) == 1500
    assert _balances(services) == {three[0]: 1000, three[1]: 1500, three[2]: 3000}


def test_a_credit_changes_its_card_alone_and_stamps_it(services, three):
    assert _change(services, three[0], 250) == 1250
    assert _balances(services) == {three[0]: 1250, three[1]: 2000, three[2]: 3000}
    with services.engine.connect() as connection:
        stamps = dict(connection.execute(text("SELECT id, updated_at FROM giftcards")).all())
    assert [card_id for card_id, stamp in stamps.items() if _utc(stamp) == NOW] == [three[0]]


def test_a_credit_makes_a_pending_card_active_and_leaves_other_states(services, three):
    with services.engine.begin() as connection:
        connection.execute(text("UPDATE giftcards SET state = 'PENDING' WHERE id = :id"), {"id": three[0]})
        connection.execute(text("UPDATE giftcards SET state = 'BLOCKED' WHERE id = :id"), {"id": three[1]})
    for card_id in three:
        _change(services, card_id, 100)
    with services.engine.connect() as connection:
        states = dict(connection.execute(text("SELECT id, state FROM giftcards")).all())
    assert states == {three[0]: "ACTIVE", three[1]: "BLOCKED", three[2]: "ACTIVE"}


def test_a_debit_may_empty_a_card_but_not_overdraw_it(services, three):
    assert _change(services, three[0], -1001) is None
    assert _change(services, three[0], -1000) == 0
    assert _balances(services) == {three[0]: 0, three[1]: 2000, three[2]: 3000}


def test_a_credit_may_reach_the_ceiling_but_not_pass_it(services, three):
    assert _change(services, three[0], 1001, ceiling=2000) is None
    assert _change(services, three[0], 1000, ceiling=2000) == 2000
    assert _balances(services)[three[0]] == 2000


def test_a_debit_is_not_held_to_the_ceiling(services, three):
    assert _change(services, three[2], -1, ceiling=1000) == 2999


def test_one_minor_unit_past_the_ceiling_is_refused(services, three):
    assert _change(services, three[0], 1, ceiling=1000) is None
    assert _change(services, three[0], 1, ceiling=1001) == 1001


def test_a_zero_change_is_no_credit_and_is_not_held_to_the_ceiling(services, three):
    assert _change(services, three[2], 0, ceiling=1000) == 3000


def test_an_unknown_card_changes_nothing(services, three):
    assert _change(services, three[2] + 1, -1) is None
    assert _change(services, three[2] + 1, 1) is None
    assert _balances(services) == {three[0]: 1000, three[1]: 2000, three[2]: 3000}


# --- held --------------------------------------------------------------------------------------


def test_only_open_unexpired_debit_holds_are_held(services, three):
    card, other = three[0], three[1]
    _entry(services, card, -100)  # counted
    _entry(services, card, -20)  # counted
    _entry(services, card, -400, expires=NOW)  # lapsed at this very moment
    _entry(services, card, -800, expires=NOW - timedelta(seconds=1))
    _entry(services, card, 300)  # a credit hold holds nothing
    _entry(services, card, -1, status="CANCELLED")
    _entry(services, card, -2, status="COMPLETED")
    _entry(services, other, -50)  # another card's

    with transaction(services) as session:
        assert store.held(session, card, NOW) == 120
        assert store.held(session, other, NOW) == 50
        assert store.held(session, three[2], NOW) == 0

    # The money path reads the same figure with the card, in the statement that locks it.
    with transaction(services) as session:
        locked = {card_id: money.lock_card(session, card_id, DEFAULT, NOW) for card_id in three}
    assert {card_id: found.held for card_id, found in locked.items() if found} == {
        card: 120,
        other: 50,
        three[2]: 0,
    }
    assert [found.balance for found in locked.values() if found] == [1000, 2000, 3000]


def test_a_card_is_locked_only_among_the_callers_stores(services, three):
    with transaction(services) as session:
        assert money.lock_card(session, three[0], ("elsewhere",), NOW) is None
        assert money.lock_card(session, three[0], (), NOW) is None  # a token of no store
        assert money.lock_card(session, three[2] + 1, None, NOW) is None
        found = money.lock_card(session, three[0], None, NOW)
    assert found is not None
    assert (found.id, found.store_id, found.balance, found.state) == (three[0], "default", 1000, "ACTIVE")


# --- verify ------------------------------------------------------------------------------------


def test_verify_agrees_with_a_clean_ledger_and_counts_every_card(services, three, seed):
    seed({CodeType.PHYSICAL: "STORELEDGERX"})  # a card with no ledger rows at all
    _entry(services, three[0], -1000)  # holds exactly the balance
    _entry(services, three[1], 500)  # credit holds and cancelled rows are not in the balance
    _entry(services, three[1], -700, status="CANCELLED")

    assert store.verify(services.engine, NOW) == (4, [])


def test_verify_counts_only_open_debit_holds(services, three):
    # given rows beyond each card's balance that hold nothing: a cancelled hold, a captured one
    # (its expiry stays on the row), and a credit hold
    _entry(services, three[0], -5000, status="CANCELLED")
    _entry(services, three[1], 5000)
    _entry(services, three[2], -2500, status="COMPLETED")  # 30.00 spent down to 5.00
    with services.engine.begin() as connection:
        connection.execute(text("UPDATE giftcards SET balance = 500 WHERE id = :id"), {"id": three[2]})

    assert store.verify(services.engine, NOW) == (3, [])


def test_verify_tells_cards_of_the_same_balance_apart(services, seed):
    same = [seed({CodeType.PHYSICAL: f"STORESAME{n}"}) for n in range(2)]
    for card_id in same:
        fund(services.engine, card_id, 700)
    _entry(services, same[1], -701)

    assert store.verify(services.engine, NOW) == (2, [store.LedgerDifference(same[1], 700, 700, 701)])


def test_reads_do_not_wait_for_a_writer(settings, services, three):
    # given a reader that would give up on a lock at once, and a writer holding the write lock
    reader = db.create_db_engine(settings)
    if reader.dialect.name == "sqlite":
        event.listen(reader, "connect", lambda connection, _: connection.execute("PRAGMA busy_timeout=50"))
    try:
        with services.engine.begin() as writer:
            writer.execute(text("UPDATE giftcards SET balance = 0 WHERE id = :id"), {"id": three[0]})

            # then verify and code lookups read what was committed, without waiting
            assert store.verify(reader, NOW) == (3, [])
            found = store.LedgerStore(reader).live_codes(
                _hashes(services, "STORELEDGER0"), "PHYSICAL", DEFAULT
            )
            assert [code.giftcard_id for code in found] == [three[0]]
    finally:
        reader.dispose()


def test_verify_reports_open_holds_beyond_the_balance(services, three):
    # given a card of 10.00 whose open debit holds come to 10.01 (an expired one and a credit hold
    # do not count)
    _entry(services, three[0], -600)
    _entry(services, three[0], -401)
    _entry(services, three[0], -5000, expires=NOW)
    _entry(services, three[0], 500)

    checked, differences = store.verify(services.engine, NOW)

    assert checked == 3
    assert differences == [store.LedgerDifference(three[0], 1000, 1000, 1001)]


def test_verify_reports_a_balance_the_completed_entries_do_not_add_up_to(services, three):
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcards SET balance = balance + 1 WHERE id = :id"), {"id": three[2]}
        )
    _entry(services, three[2], -5)

    assert store.verify(services.engine, NOW)[1] == [store.LedgerDifference(three[2], 3001, 3000, 5)]


def test_check_streams_in_batches_keeps_the_first_differences_and_counts_them_all(
    services, three, monkeypatch
):
    # given the first and last cards off by one, the middle one sound, and batches of two rows
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcards SET balance = balance + 1 WHERE id IN (:a, :b)"),
            {"a": three[0], "b": three[2]},
        )
    monkeypatch.setattr(store, "VERIFY_BATCH", 2)
    heard: list[int] = []

    result = store.check(services.engine, NOW, keep=1, progress=heard.append)

    assert (result.checked, result.found) == (3, 2)
    assert len(result.differences) == 1
    assert result.differences[0] in (
        store.LedgerDifference(three[0], 1001, 1000, 0),
        store.LedgerDifference(three[2], 3001, 3000, 0),
    )
    assert heard == [2, 3]  # after each batch
    everything = store.check(services.engine, NOW)
    assert sorted(d.giftcard_id for d in everything.differences) == sorted([three[0], three[2]])
    assert store.verify(services.engine, NOW)[0] == 3


def test_the_ledger_verify_command_reports_holds_beyond_the_balance(
    services, three, settings, monkeypatch, capsys
):
    monkeypatch.setenv("GIFTCARDS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GIFTCARDS_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("GIFTCARDS_PERMISSIONS_FILE", str(ROOT / "permissions.yaml"))
    assert cli.main(["ledger", "verify"]) == 0
    assert capsys.readouterr().out.endswith("ledger verify: 3 cards checked, 0 differences\n")

    _entry(services, three[1], -2001, expires=datetime.now(UTC) + timedelta(hours=1))

    assert cli.main(["ledger", "verify"]) == 1
    assert capsys.readouterr().out == (
        f"card {three[1]}: stored balance 2000, ledger says 2000, open holds 2001 (minor units)\n"
        "ledger verify: 3 cards checked, 1 differences\n"
    )


# --- codes and PIN counters --------------------------------------------------------------------


@pytest.fixture
def coded(seed, services):
    """A card with a PHYSICAL code (PIN 1234) and an EXTERNAL code of the same text, and a revoked
    PERSONAL one."""
    return seed(
        {
            CodeType.PHYSICAL: "STORECODE001",
            CodeType.EXTERNAL: "STORECODE001",
            CodeType.PERSONAL: "STORECODE002",
        },
        pin="1234",
        revoked={CodeType.PERSONAL},
        expires={CodeType.PHYSICAL: date(2031, 1, 2)},
    )


def _hashes(services, code):
    return services.vault.lookup_hashes(normalise(code))


def _live(services, code, code_type, stores=DEFAULT):
    return store.LedgerStore(services.engine).live_codes(_hashes(services, code), code_type, stores)


def test_live_codes_match_type_and_skip_revoked(services, coded):
    (physical,) = _live(services, "STORECODE001", "PHYSICAL")
    (external,) = _live(services, "STORECODE001", "EXTERNAL")
    assert (physical.giftcard_id, physical.expires_on) == (coded, date(2031, 1, 2))
    assert (external.giftcard_id, external.expires_on) == (coded, None)
    assert physical.code_id != external.code_id
    assert _live(services, "STORECODE001", "PERSONAL") == []
    assert _live(services, "STORECODE002", "PERSONAL") == []
    assert _live(services, "STORECODE003", "PHYSICAL") == []


def test_live_codes_try_every_hash_given(services, coded):
    hashes = (b"\0" * 32, *_hashes(services, "STORECODE001"))
    found = store.LedgerStore(services.engine).live_codes(hashes, "PHYSICAL", DEFAULT)
    assert [code.giftcard_id for code in found] == [coded]


def test_live_codes_are_those_of_the_callers_stores(services, seed, coded):
    north = seed({CodeType.PHYSICAL: "STORECODE001"}, store_id="north")
    assert [code.giftcard_id for code in _live(services, "STORECODE001", "PHYSICAL", ("north",))] == [north]
    in_both = _live(services, "STORECODE001", "PHYSICAL", ("default", "north"))
    assert sorted(code.giftcard_id for code in in_both) == sorted([coded, north])
    assert len(_live(services, "STORECODE001", "PHYSICAL", None)) == 2  # every store
    assert _live(services, "STORECODE001", "PHYSICAL", ("east",)) == []
    assert _live(services, "STORECODE001", "PHYSICAL", ()) == []  # no store at all


def test_one_ledger_store_reads_codes_in_every_shape_of_hashes_and_stores(services, seed, coded):
    # given one store's reads, each shape (hashes given, stores named) prepared once and kept
    north = seed({CodeType.PHYSICAL: "STORECODE001"}, store_id="north")
    ledger, hashes = store.LedgerStore(services.engine), _hashes(services, "STORECODE001")

    def found(lookup_hashes, stores):
        return sorted(code.giftcard_id for code in ledger.live_codes(lookup_hashes, "PHYSICAL", stores))

    # when shapes alternate, then each read answers for its own shape, the first and again after
    for _ in range(2):
        assert found(hashes, DEFAULT) == [coded]
        assert found((b"\0" * 32, *hashes), ("north",)) == [north]
        assert found(hashes, None) == sorted([coded, north])
        assert found((b"\0" * 32, b"\1" * 32, *hashes), ("default", "north")) == sorted([coded, north])


def test_a_revoked_code_is_found_in_the_callers_stores_only(services, coded):
    revoked = _hashes(services, "STORECODE002")  # the default store's card's PERSONAL code, revoked
    ledger = store.LedgerStore(services.engine)
    assert [
        ledger.revoked_code_exists(revoked, "PERSONAL", stores) for stores in (None, ("east", "default"))
    ] == [
        True,
        True,
    ]
    assert [ledger.revoked_code_exists(revoked, "PERSONAL", stores) for stores in (("north",), ())] == [
        False,
        False,
    ]


def test_a_revoked_code_is_found_only_as_revoked_and_only_under_its_type(services, coded):
    revoked = _hashes(services, "STORECODE002")  # the card's PERSONAL code, revoked
    assert store.LedgerStore(services.engine).revoked_code_exists(revoked, "PERSONAL", DEFAULT) is True
    assert (
        store.LedgerStore(services.engine).revoked_code_exists((b"\0" * 32, *revoked), "PERSONAL", DEFAULT)
        is True
    )
    # not under another type, not a live code, not an unknown one
    assert store.LedgerStore(services.engine).revoked_code_exists(revoked, "PHYSICAL", DEFAULT) is False
    assert (
        store.LedgerStore(services.engine).revoked_code_exists(
            _hashes(services, "STORECODE001"), "PHYSICAL", DEFAULT
        )
        is False
    )
    assert (
        store.LedgerStore(services.engine).revoked_code_exists(
            _hashes(services, "STORECODE003"), "PERSONAL", DEFAULT
        )
        is False
    )


def test_code_for_update_reads_the_pin_state(services, seed):
    card_id = seed(
        {CodeType.PHYSICAL: "STORECODE004"},
        pin="1234",
        revoked={CodeType.PHYSICAL},
        expires={CodeType.PHYSICAL: date(2031, 1, 2)},
    )
    code_id, _, _, pin_hash, key_ids = _code_row(services, card_id)
    with transaction(services) as session:
        store.record_pin_failure(session, code_id, 1, NOW)
        locked = store.code_for_update(session, code_id)
    assert locked == store.LockedCode(True, date(2031, 1, 2), pin_hash, key_ids, 0, NOW)
    assert pin_hash is not None and key_ids is not None

    live = seed({CodeType.PHYSICAL: "STORECODE005"}, expires={CodeType.PHYSICAL: date(2031, 1, 3)})
    with transaction(services) as session:
        unlocked = store.code_for_update(session, _code_row(services, live)[0])
    assert unlocked == store.LockedCode(False, date(2031, 1, 3), None, None, 0, None)


def test_wrong_pins_count_up_and_the_last_allowed_locks_and_restarts(services, coded, seed):
    other = seed({CodeType.PHYSICAL: "STORECODE006"}, pin="1234")
    code_id = _code_row(services, coded)[0]
    locked_until = NOW + timedelta(minutes=15)

    def fail():
        with transaction(services) as session:
            store.record_pin_failure(session, code_id, 3, locked_until)
        with transaction(services) as session:
            state = store.code_for_update(session, code_id)
        return state.failed_pin_attempts, state.pin_locked_until

    assert fail() == (1, None)
    assert fail() == (2, None)
    assert fail() == (0, locked_until)  # the third locks and restarts the count
    assert fail() == (1, locked_until)  # the lock stays while the count runs on
    assert _code_row(services, other)[1:3] == (0, None)


def test_a_right_pin_ends_the_run_and_may_replace_the_stored_pin(services, coded, seed):
    other = seed({CodeType.PHYSICAL: "STORECODE007"}, pin="1234")
    code_id, _, _, pin_hash, key_ids = _code_row(services, coded)
    other_row = _code_row(services, other)
    with transaction(services) as session:
        store.record_pin_failure(session, code_id, 5, NOW)
        store.record_pin_failure(session, other_row[0], 5, NOW)
        store.record_pin_success(session, code_id)
    assert _code_row(services, coded)[1:] == (0, None, pin_hash, key_ids)

    with transaction(services) as session:
        store.record_pin_failure(session, code_id, 5, NOW)
        store.record_pin_success(session, code_id, "new-hash", "kp9")
    assert _code_row(services, coded)[1:] == (0, None, "new-hash", "kp9")
    assert _code_row(services, other)[1:] == (1, None, *other_row[3:])


def test_entry_for_update_finds_the_entry_or_none(services, three):
    entry_id = _entry(services, three[0], -7)
    with transaction(services) as session:
        found = store.entry(session, entry_id, lock=True)
        assert found is not None and (found.giftcard_id, found.amount) == (three[0], -7)
        assert store.entry(session, entry_id + 1, lock=True) is None


def test_entry_locks_the_row_only_when_asked(services, three, monkeypatch):
    entry_id = _entry(services, three[0], -7)
    with transaction(services) as session:
        statements = []
        execute = session.execute

        def recording(statement):
            statements.append(statement)
            return execute(statement)

        monkeypatch.setattr(session, "execute", recording)
        for lock in ({}, {"lock": False}, {"lock": True}):
            assert store.entry(session, entry_id, **lock) is not None
    # as PostgreSQL would be asked (SQLite has no row locks and leaves FOR UPDATE out)
    sql = [str(statement.compile(dialect=postgresql.dialect())) for statement in statements]
    assert ["FOR UPDATE" in text_ for text_ in sql] == [False, False, True]


def test_a_ledger_row_reads_as_a_transaction_with_its_types_and_balance(services, three):
    entry_id = _entry(services, three[0], -7)
    with transaction(services) as session:
        found = store.entry(session, entry_id)
        assert found is not None
        row = {**found._mapping, "currency": "USD", "balance_after": 993}

    read = store.transaction_from_row(row)
    assert (read.trans_type, read.status, read.balance) == (TransType.USE, TransStatus.AUTHORIZED, 993)
    assert type(read.trans_type) is TransType and type(read.status) is TransStatus
    assert store.transaction_from_row(row, balance=500, available_balance=400).balance == 500


def _utc(stamp) -> datetime:
    """A stamp as read by plain SQL: SQLite gives text without the (UTC) offset."""
    moment = stamp if isinstance(stamp, datetime) else datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- authorizations by their code's hash --------------------------------------------------------


def _authorization(card_id, code_hash, amount=-100):
    return {
        "giftcard_id": card_id,
        "trans_type": "USE",
        "status": "AUTHORIZED",
        "amount": amount,
        "balance_after": 0,
        "auth_code_hash": code_hash,
        "created_at": NOW,
    }


def _ledger_rows(services):
    with services.engine.connect() as connection:
        return connection.execute(
            text("SELECT giftcard_id, amount, auth_code_hash FROM giftcard_transactions ORDER BY id")
        ).all()


def test_an_authorization_is_found_by_its_code_hash_alone(services, three):
    first, second = b"\x01" * 32, b"\x02" * 32
    with transaction(services) as session:
        one = store.add_authorization(session, _authorization(three[0], first))
        two = store.add_authorization(session, _authorization(three[1], second, -200))
    assert one is not None and two is not None

    with transaction(services) as session:
        found = store.entry_by_auth_code(session, second)
        assert found is not None and (found.id, found.giftcard_id, found.amount) == (two.id, three[1], -200)
        assert store.entry_by_auth_code(session, b"\x03" * 32) is None


def test_an_authorization_whose_code_hash_is_taken_writes_nothing(services, three):
    taken = b"\x07" * 32
    with transaction(services) as session:
        assert store.add_authorization(session, _authorization(three[0], taken)) is not None
    before = _ledger_rows(services)

    with transaction(services) as session:
        assert store.add_authorization(session, _authorization(three[1], taken, -300)) is None
        # the transaction it ran in goes on (PostgreSQL would refuse anything after a failed statement)
        assert store.entry_by_auth_code(session, taken) is not None

    assert _ledger_rows(services) == before
    assert [row[2] for row in before].count(taken) == 1
