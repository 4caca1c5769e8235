"""The id generator: 64-bit, positive, time-ordered, not dense, monotonic within a process."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.ids import EPOCH_MS, LOW_BITS, MAX_ID, NODES, RANDOM_BITS, IdGenerator, new_id


class _Clock:
    """A wall clock that moves only when told (milliseconds since the Unix epoch)."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Iterator[_Clock]:
    yield _Clock(EPOCH_MS + 340 * 86_400_000)  # early December of the epoch's year


def test_ids_are_positive_signed_64_bit_integers_above_every_32_bit_id():
    ids = [new_id() for _ in range(1000)]
    assert all(2**31 <= item_id <= MAX_ID for item_id in ids)
    assert MAX_ID == 2**63 - 1


def test_ids_of_one_process_only_ever_increase():
    ids = [new_id() for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000


def test_the_low_bits_are_not_a_count(clock):
    # 1,000 ids in one millisecond: their gaps are random, not 1, 1, 1, …
    generate = IdGenerator(clock)
    ids = [generate() for _ in range(1000)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(ids)]
    assert len(set(gaps)) > 50
    assert sum(gaps) / len(gaps) > 16


def test_the_node_bits_are_the_bound_node(clock):
    generate = IdGenerator(clock)
    generate.bind(NODES - 1)
    ids = [generate() for _ in range(300)]
    assert {(item_id >> RANDOM_BITS) % NODES for item_id in ids} == {NODES - 1}
    with pytest.raises(ValueError, match="node number"):
        generate.bind(NODES)


def test_two_nodes_never_hand_out_the_same_id_even_with_the_same_clock_and_luck(clock, monkeypatch):
    # the same millisecond and the same random draws: only the node bits tell them apart
    monkeypatch.setattr("app.ids.secrets.randbits", lambda bits: 7)
    monkeypatch.setattr("app.ids.secrets.randbelow", lambda bound: 3)
    first, second = IdGenerator(clock), IdGenerator(clock)
    first.bind(1)
    second.bind(2)
    assert not {first() for _ in range(5000)} & {second() for _ in range(5000)}


def test_the_high_bits_are_the_millisecond_of_issue(clock):
    generate = IdGenerator(clock)
    first = generate()
    clock.now_ms += 1
    second = generate()
    clock.now_ms += 60_000
    third = generate()
    assert [item_id >> LOW_BITS for item_id in (first, second, third)] == [
        340 * 86_400_000,
        340 * 86_400_000 + 1,
        340 * 86_400_000 + 60_001,
    ]
    assert first < second < third


def test_ids_keep_increasing_when_the_clock_stands_still_or_goes_back(clock):
    generate = IdGenerator(clock)
    standing = [generate() for _ in range(500)]
    clock.now_ms -= 5_000
    after_going_back = [generate() for _ in range(500)]
    ids = standing + after_going_back
    assert ids == sorted(ids) and len(set(ids)) == 1000
    # without a clock that moves, they still span far more than 1,000 values
    assert ids[-1] - ids[0] > 1000 * 1000


def test_threads_sharing_the_generator_never_get_the_same_id(clock):
    generate = IdGenerator(clock)
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda _: generate(), range(4000)))
    assert len(set(ids)) == 4000


def test_a_clock_before_the_epoch_still_gives_ids_above_every_32_bit_id(clock):
    clock.now_ms = 0
    assert IdGenerator(clock)() > 2**31


def test_a_clock_past_what_64_bits_hold_is_an_error_not_a_wrapped_id(clock):
    clock.now_ms = EPOCH_MS + 2 ** (63 - LOW_BITS)
    with pytest.raises(RuntimeError, match="64-bit id"):
        IdGenerator(clock)()


def test_the_last_millisecond_64_bits_hold_still_gives_an_id(clock):
    clock.now_ms = EPOCH_MS + 2 ** (63 - LOW_BITS) - 1
    assert IdGenerator(clock)() <= MAX_ID


def test_each_starting_process_claims_the_next_node(tmp_path):
    from sqlalchemy import create_engine

    from app import db

    engine = create_engine(f"sqlite:///{tmp_path}/nodes.db")
    db.upgrade(engine)
    try:
        claimed = [db.claim_id_node(engine) for _ in range(3)]
        assert claimed == [claimed[0], (claimed[0] + 1) % NODES, (claimed[0] + 2) % NODES]
        # and the process's ids carry the node it claimed last
        assert (new_id() >> RANDOM_BITS) % NODES == claimed[-1]
    finally:
        engine.dispose()
