"""SIGKILL the real server in the middle of a stream of keyed debits, restart it, retry what went unanswered.

Whatever the moment of the kill, the ledger must be whole: `giftcards ledger verify` is clean, each
idempotency key is at most one transaction (none twice, none half-written), and the balance is the
funding minus the debits that were answered with success.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import create_engine, text

from tests.test_concurrency import (
    REQUEST_TIMEOUT,
    TRANS,
    Server,
    balance_over_http,
    fund_over_http,
    giftcards,
    mint,
    server_env,
)

CODE = "CRASHPHYS0001"
FUNDING = "1000.00"  # far more than the stream spends: every debit can succeed
FUNDING_CENTS = 100_000
CLIENTS = 8
MAX_PER_CLIENT = 2_000  # a bound; the kill comes long before
KILL_AFTER = 150  # answered debits before the kill
SOURCE = "crash-test"


def debit(key: str) -> dict[str, Any]:
    """The same input every time a key is sent (a retry must repeat it exactly)."""
    return {
        "t": {
            "codeType": "PHYSICAL",
            "code": CODE,
            "transType": "USE",
            "amount": "-0.01",
            "sourceId": SOURCE,
            "refNo": key,
        },
        "key": key,
    }


@dataclass
class Stream:
    """What the clients saw: transaction id per answered key, keys left without an answer."""

    answered: dict[str, str] = field(default_factory=dict)
    unanswered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def send(client: httpx.Client, token: str, key: str) -> dict[str, Any]:
    response = client.post(
        "/graphql",
        json={"query": TRANS, "variables": debit(key)},
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code != 200:
        raise AssertionError(f"HTTP {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


def record(stream: Stream, key: str, body: dict[str, Any]) -> None:
    with stream.lock:
        if body.get("errors") or not body.get("data"):
            stream.errors.append(f"{key}: {body}")
        else:
            stream.answered[key] = body["data"]["giftcardTransAdd"]["id"]


def client_loop(url: str, token: str, n: int, stream: Stream) -> None:
    """Keyed debits one after another until the server goes away (then that key is unanswered)."""
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        for i in range(MAX_PER_CLIENT):
            key = f"crash-{n}-{i}"
            try:
                body = send(client, token, key)
            except httpx.HTTPError:
                with stream.lock:
                    stream.unanswered.append(key)
                return
            except AssertionError as exc:
                with stream.lock:
                    stream.errors.append(f"{key}: {exc}")
                return
            record(stream, key, body)
            if stream.stop.is_set():
                return


def wait_for(condition: Callable[[], object], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def rows(database_url: str, sql: str) -> list[Any]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)))
    finally:
        engine.dispose()


@pytest.mark.server
def test_sigkill_mid_stream_loses_nothing_and_records_nothing_twice(database_url, tmp_path: Path):
    env = server_env(database_url, tmp_path)
    admin, till = mint(env, "ops", "admin"), mint(env, "till", "pos")
    server = Server(env, tmp_path / "server.log")
    stream = Stream()
    try:
        # given the real server and a card loaded with $1,000.00
        server.start()
        card_id = fund_over_http(server.url, admin, CODE, FUNDING)

        # when four clients stream keyed one-cent debits and the server is SIGKILLed mid-stream
        url = server.url
        threads = [
            threading.Thread(target=client_loop, args=(url, till, n, stream), daemon=True)
            for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        wait_for(
            lambda: (
                len(stream.answered) >= KILL_AFTER
                or stream.errors
                or not any(thread.is_alive() for thread in threads)
            ),
            60,
        )
        server.kill()
        stream.stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT + 10)
        assert not any(thread.is_alive() for thread in threads)
        assert stream.errors == []
        answered_before_kill = len(stream.answered)
        committed_unanswered = {
            row[0]: str(row[1])
            for row in rows(
                database_url, f"SELECT ref_no, id FROM giftcard_transactions WHERE source_id = '{SOURCE}'"
            )
            if row[0] in stream.unanswered
        }

        # and, restarted on the same database, every unanswered debit is sent again with its key
        server.start()
        with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as client:
            for key in stream.unanswered:
                record(stream, key, send(client, till, key))
            replays = {key: send(client, till, key) for key in list(stream.answered)[:20]}
        balance = balance_over_http(server.url, admin, card_id)
    finally:
        server.stop()

    # then every debit has a definite answer, and the ones that had committed unseen were replayed
    assert stream.errors == []
    assert set(stream.answered) >= set(stream.unanswered)
    for key, entry_id in committed_unanswered.items():
        assert stream.answered[key] == entry_id
    for key, body in replays.items():
        assert body["data"]["giftcardTransAdd"]["id"] == stream.answered[key]
    # and the ledger holds each answered debit exactly once, whole, and nothing else
    debits = rows(
        database_url,
        "SELECT ref_no, id, status, amount, balance_before, balance_after "
        f"FROM giftcard_transactions WHERE source_id = '{SOURCE}'",
    )
    by_key = {row[0]: row for row in debits}
    assert len(by_key) == len(debits)  # no key recorded twice
    assert set(by_key) == set(stream.answered)
    assert {key: str(row[1]) for key, row in by_key.items()} == stream.answered
    assert all(row[2] == "COMPLETED" and row[3] == -1 and row[4] - 1 == row[5] for row in debits)
    successes = len(stream.answered)
    assert sorted(row[5] for row in debits) == list(range(FUNDING_CENTS - successes, FUNDING_CENTS))
    keys = rows(database_url, "SELECT key FROM idempotency_keys WHERE subject = 'till'")
    assert {row[0] for row in keys} == set(stream.answered)  # each key with its transaction, or neither
    assert balance == f"{(FUNDING_CENTS - successes) / 100:.2f}"
    verify = giftcards(env, "ledger", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(
        f"crash: {answered_before_kill} answered before the kill, {len(stream.unanswered)} unanswered "
        f"({len(committed_unanswered)} of them committed), {successes} debits in all"
    )
