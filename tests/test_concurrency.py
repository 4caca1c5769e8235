"""Many parallel debits at one card: no overdraft, an exact balance, a clean ledger, a definite answer each.

Directly through the domain on SQLite and PostgreSQL, and over HTTP against the real server
(``giftcards serve --workers 2``, with ``--sqlite-multiprocess`` so that two processes write one
SQLite file). The server helpers here are shared with ``test_crash.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, text

from app.domain.trans_requests import TransRequest
from app.enums import CodeType, TransType
from app.errors import ConflictError, InsufficientFundsError
from app.policy import Principal
from app.store import ledger as ledger_store
from tests.conftest import ROOT, fund, transaction

T = TypeVar("T")

CODE = "CONCURRENT0001"
THREADS = 16
PER_THREAD = 63  # 16 x 63 = 1,008 debits
FUNDED = 600  # minor units: $6.00
USE = frozenset({"ListGiftCards", "GiftCardTransUse", "UsePhysicalGiftCardCodes"})
SERVER_START_SECONDS = 60
REQUEST_TIMEOUT = 30.0


# --- helpers: threads, funding, the ledger ------------------------------------------------------


def in_parallel(count: int, work: Callable[[int], T], timeout: float = 120) -> list[T]:
    """``work(0..count-1)`` on ``count`` threads released together; their results in order."""
    start = threading.Barrier(count, timeout=30)

    def released(n: int) -> T:
        start.wait()
        return work(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(released, n) for n in range(count)]
        return [future.result(timeout=timeout) for future in futures]


def scalar(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def ledger_differences(engine: Engine) -> list[ledger_store.LedgerDifference]:
    return ledger_store.verify(engine, datetime.now(UTC))[1]


@dataclass
class Tally:
    """What one client saw: balances left by its successes, refusals, anything else."""

    balances: list[int] = field(default_factory=list)
    refused: int = 0
    errors: list[str] = field(default_factory=list)

    @staticmethod
    def merge(tallies: list[Tally]) -> Tally:
        merged = Tally()
        for tally in tallies:
            merged.balances += tally.balances
            merged.refused += tally.refused
            merged.errors += tally.errors
        return merged


# --- directly against the database (SQLite and PostgreSQL) --------------------------------------


def _debit_request(n: int, card_id: int, units: int = 1) -> TransRequest:
    """Even clients address the card by its code (like a POS), odd ones by its id."""
    amount = f"-{units / 100:.2f}"
    if n % 2:
        return TransRequest(TransType.USE, amount, giftcard_id=str(card_id))
    return TransRequest(TransType.USE, amount, code_type=CodeType.PHYSICAL, code=CODE)


def test_parallel_debits_never_overdraw(services, seed):
    # given a card holding 600 units, funded through the ledger
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, FUNDED)

    # when 16 clients, each with its own principal, send 1,008 one-unit debits at once
    def client(n: int) -> Tally:
        principal, request, tally = Principal(f"pos-{n}", USE), _debit_request(n, card_id), Tally()
        for _ in range(PER_THREAD):
            try:
                view = services.ledger.create(principal, request)
            except InsufficientFundsError:
                tally.refused += 1
            except Exception as exc:  # any other answer is a failure of the test
                tally.errors.append(repr(exc))
            else:
                tally.balances.append(view.balance)
                assert view.available_balance == view.balance >= 0
        return tally

    started = time.monotonic()
    seen = Tally.merge(in_parallel(THREADS, client))
    elapsed = time.monotonic() - started

    # then every client got a definite answer, and exactly the funded units were spent, one at a time
    assert seen.errors == []
    assert (len(seen.balances), seen.refused) == (FUNDED, THREADS * PER_THREAD - FUNDED)
    assert sorted(seen.balances) == list(range(FUNDED))  # each success left its own balance: no overdraft
    engine = services.engine
    assert scalar(engine, "SELECT balance FROM giftcards WHERE id = :id", id=card_id) == 0
    assert (
        scalar(
            engine,
            "SELECT COUNT(*) FROM giftcard_transactions WHERE trans_type = 'USE' AND status = 'COMPLETED'",
        )
        == FUNDED
    )
    assert ledger_differences(engine) == []
    print(f"direct: {FUNDED} debited, {seen.refused} refused in {elapsed:.1f}s")


@dataclass
class MixedTally:
    captured: int = 0
    immediate: int = 0
    open_holds: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)


MIXED_FUNDED = 500
MIXED_ROUNDS = 30


def _mixed_client(services: Any, card_id: int, n: int) -> MixedTally:
    """Rounds of: an immediate 2-unit debit; a 3-unit hold captured (whole or 2); a 3-unit hold
    cancelled. Then one 1-unit hold left open."""
    principal, tally = Principal(f"shop-{n}", USE), MixedTally()
    ledger = services.ledger

    def attempt(action: Callable[[], Any], refusable: bool = True) -> Any:
        """The result, or None after a refusal; only debits and holds may be refused."""
        try:
            return action()
        except InsufficientFundsError as exc:
            if not refusable:  # a hold's own funds are there to capture or release
                tally.errors.append(repr(exc))
            tally.refused += 1
        except Exception as exc:
            tally.errors.append(repr(exc))
        return None

    hold = TransRequest(TransType.USE, "-0.03", giftcard_id=str(card_id), authorize_only=True)
    for round_ in range(MIXED_ROUNDS):
        kind = round_ % 3
        if kind == 0:
            if attempt(partial(ledger.create, principal, _debit_request(n, card_id, 2))) is not None:
                tally.immediate += 2
            continue
        held = attempt(partial(ledger.create, principal, hold))
        if held is None:
            continue
        if kind == 2:
            attempt(partial(ledger.cancel, principal, str(held.id)), refusable=False)
            continue
        amount = "-0.02" if round_ % 2 else None  # a smaller capture releases the rest
        if attempt(partial(ledger.capture, principal, str(held.id), amount), refusable=False) is not None:
            tally.captured += 2 if amount else 3
    last = TransRequest(TransType.USE, "-0.01", giftcard_id=str(card_id), authorize_only=True)
    if attempt(partial(ledger.create, principal, last)) is not None:
        tally.open_holds += 1
    return tally


def test_parallel_holds_captures_cancels_and_debits_keep_the_ledger_exact(services, seed):
    # given a card holding 500 units (less than the 16 clients will try to spend)
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, MIXED_FUNDED)

    # when 16 clients at once place holds, capture or cancel them, and debit immediately
    started = time.monotonic()
    tallies = in_parallel(THREADS, lambda n: _mixed_client(services, card_id, n))
    elapsed = time.monotonic() - started

    # then only refusals for lack of funds, and the card is what the answers add up to
    errors = [error for tally in tallies for error in tally.errors]
    assert errors == []
    captured = sum(tally.captured for tally in tallies)
    immediate = sum(tally.immediate for tally in tallies)
    open_holds = sum(tally.open_holds for tally in tallies)
    refused = sum(tally.refused for tally in tallies)
    assert refused > 0  # the card did run dry: the limit was exercised
    engine = services.engine
    balance = scalar(engine, "SELECT balance FROM giftcards WHERE id = :id", id=card_id)
    assert balance == MIXED_FUNDED - captured - immediate >= open_holds
    with transaction(services) as session:
        assert ledger_store.held(session, card_id, datetime.now(UTC)) == open_holds
    assert ledger_differences(engine) == []
    print(
        f"mixed: captured {captured}, debited {immediate}, {open_holds} held, {refused} refused "
        f"in {elapsed:.1f}s"
    )


HOLDS = 24


def test_racing_captures_and_cancels_settle_each_hold_exactly_once(services, seed):
    # given a card holding 240 units and 24 open holds of 5 units each
    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 240)
    owner = Principal("shop", USE)
    hold = TransRequest(TransType.USE, "-0.05", giftcard_id=str(card_id), authorize_only=True)
    holds = [str(services.ledger.create(owner, hold).id) for _ in range(HOLDS)]

    # when 16 clients race over every hold, even ones capturing it and odd ones cancelling it
    def client(n: int) -> list[tuple[str, str]]:
        principal, won = Principal(f"shop-{n}", USE), []
        settle = services.ledger.capture if n % 2 == 0 else services.ledger.cancel
        for entry_id in holds[n:] + holds[:n]:  # each client starts at another hold
            try:
                settle(principal, entry_id)
            except ConflictError:  # settled by someone else: a definite answer
                continue
            won.append((entry_id, "captured" if n % 2 == 0 else "cancelled"))
        return won

    wins = [win for won in in_parallel(THREADS, client) for win in won]

    # then each hold was settled exactly once, and the balance follows the captures alone
    assert sorted(entry_id for entry_id, _ in wins) == sorted(holds)
    captured = sum(1 for _, how in wins if how == "captured")
    engine = services.engine
    assert scalar(engine, "SELECT balance FROM giftcards WHERE id = :id", id=card_id) == 240 - 5 * captured
    assert scalar(engine, "SELECT COUNT(*) FROM giftcard_transactions WHERE status = 'AUTHORIZED'") == 0
    assert ledger_differences(engine) == []


@pytest.mark.settings(group_commit=False)
def test_a_debit_that_waited_for_the_card_sees_the_hold_placed_meanwhile(services, seed, monkeypatch):
    # given a card holding 10 units, and a hold of 8 on it that keeps the card locked a moment
    # after it is written, before it commits
    from app.domain import ledger as ledger_domain

    card_id = seed({CodeType.PHYSICAL: CODE})
    fund(services.engine, card_id, 10)
    written, write = threading.Event(), ledger_domain.write_entry

    def slow_write(*args: Any, **kwargs: Any) -> Any:
        row = write(*args, **kwargs)
        if threading.current_thread().name == "holder":
            written.set()
            time.sleep(0.5)
        return row

    monkeypatch.setattr(ledger_domain, "write_entry", slow_write)
    principal = Principal("pos", USE)
    hold = TransRequest(TransType.USE, "-0.08", giftcard_id=str(card_id), authorize_only=True)
    holder = threading.Thread(name="holder", target=services.ledger.create, args=(principal, hold))
    holder.start()
    assert written.wait(10)

    # when a debit of 5 arrives meanwhile and waits for the card
    with pytest.raises(InsufficientFundsError):
        services.ledger.create(principal, TransRequest(TransType.USE, "-0.05", giftcard_id=str(card_id)))
    holder.join(10)

    # then it read the card's holds after it had the lock: 2 were available, so it was refused
    assert scalar(services.engine, "SELECT balance FROM giftcards WHERE id = :id", id=card_id) == 10
    assert ledger_differences(services.engine) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("read", ["live_code", "verify"])
def test_sqlite_reads_on_the_money_path_do_not_wait_for_a_writer(services, read):
    reads = {
        "live_code": lambda: ledger_store.LedgerStore(services.engine).live_codes(
            [bytes(32)], "PHYSICAL", ("default",)
        ),
        "verify": lambda: ledger_store.verify(services.engine, datetime.now(UTC)),
    }
    done = threading.Event()

    def read_then_signal() -> None:
        reads[read]()
        done.set()

    thread = threading.Thread(target=read_then_signal, daemon=True)
    # given a writer holding SQLite's write lock (BEGIN IMMEDIATE, as every unit of work does)
    writer = services.engine.connect()
    writer.execute(text("SELECT 1"))
    try:
        # when the code lookup of a transaction (or `ledger verify`) reads meanwhile
        thread.start()
        # then it answers from the WAL snapshot at once instead of waiting for the lock
        assert done.wait(timeout=1)
    finally:
        writer.rollback()
        writer.close()
        thread.join(timeout=35)


# --- the real server -----------------------------------------------------------------------------


GIFTCARDS = str(Path(sys.executable).parent / "giftcards")


def server_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GIFTCARDS_DATABASE_URL": database_url,
        "GIFTCARDS_STATE_DIR": str(tmp_path / "state"),
        "GIFTCARDS_LOG_LEVEL": "warning",
        "GIFTCARDS_PERMISSIONS_FILE": str(ROOT / "permissions.yaml"),
        # The pos role transacts by code without ListGiftCards: lift its attempt limits.
        "GIFTCARDS_CODE_ATTEMPT_LIMITS": "1000000/minute",
    }


def giftcards(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GIFTCARDS, *args], env=env, capture_output=True, text=True, timeout=120, check=check
    )


def mint(env: dict[str, str], sub: str, role: str) -> str:
    return giftcards(env, "token", "--sub", sub, "--role", role).stdout.strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``giftcards serve`` in its own process group, so the master and its workers go together."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 2) -> None:
        self.env, self.log_path, self.workers = env, log_path, workers
        # Several workers on SQLite too: these tests are of several processes on one database.
        self.several = ["--sqlite-multiprocess"] if workers > 1 else []
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [GIFTCARDS, "serve", "--port", str(port), "--workers", str(self.workers), *self.several],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not self._healthy():
            assert self.process.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, self.log_path.read_text()
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown, no flush, no rollback by the app."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self._signal_group(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        self.kill()  # whatever is left of the group, workers included


@contextmanager
def running_server(env: dict[str, str], log_path: Path) -> Iterator[Server]:
    server = Server(env, log_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def post(client: httpx.Client, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    response = client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


CARD_ADD = "mutation($g: GiftCardAddInput!) { giftcardAdd(giftcard: $g) { id } }"
TRANS = """mutation($t: GiftCardTransInput!, $key: String) {
  giftcardTransAdd(trans: $t, idempotencyKey: $key) { id amount balance availableBalance status } }"""
BALANCE = "query($id: ID!) { giftcard(id: $id) { results { balance } } }"


def fund_over_http(url: str, admin: str, code: str, amount: str) -> str:
    """A new card with a PHYSICAL code, loaded with an ADD; its id."""
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        card = post(client, CARD_ADD, {"g": {"physicalCode": code}}, admin)["data"]["giftcardAdd"]
        added = post(
            client, TRANS, {"t": {"giftcardId": card["id"], "transType": "ADD", "amount": amount}}, admin
        )
        assert added["data"]["giftcardTransAdd"]["balance"] == amount, added
    return str(card["id"])


def balance_over_http(url: str, admin: str, card_id: str) -> str:
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        body = post(client, BALANCE, {"id": card_id}, admin)
    return str(body["data"]["giftcard"]["results"][0]["balance"])


def cents(text_amount: str) -> int:
    return round(float(text_amount) * 100)


def _http_client(url: str, token: str) -> Tally:
    tally = Tally()
    debit = {"t": {"codeType": "PHYSICAL", "code": CODE, "transType": "USE", "amount": "-0.01"}}
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        for _ in range(PER_THREAD):
            try:
                response = client.post(
                    "/graphql",
                    json={"query": TRANS, "variables": debit},
                    headers={"Authorization": f"Bearer {token}"},
                )
                body = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                tally.errors.append(repr(exc))
                continue
            codes = [error.get("extensions", {}).get("code") for error in body.get("errors") or []]
            if response.status_code == 200 and not codes and body.get("data"):
                tally.balances.append(cents(body["data"]["giftcardTransAdd"]["balance"]))
            elif response.status_code == 200 and codes == ["INSUFFICIENT_FUNDS"]:
                tally.refused += 1
            else:
                tally.errors.append(f"{response.status_code}: {response.text[:300]}")
    return tally


@pytest.mark.server
def test_parallel_debits_over_http_against_the_real_server(database_url, tmp_path):
    # given the real server (two workers) and a card loaded with $6.00 through the API
    env = server_env(database_url, tmp_path)
    tokens = mint(env, "ops", "admin"), mint(env, "till", "pos")
    with running_server(env, tmp_path / "server.log") as server:
        # when 16 clients send 1,008 one-cent debits by code at once
        # then every request got a definite answer and exactly $6.00 was spent, a cent at a time
        race_debits_over_http(server, *tokens)
    verify = giftcards(env, "ledger", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.server
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_parallel_debits_over_http_on_sqlite_with_the_workers_serve_chooses(database_url, tmp_path):
    # given `giftcards serve --workers 2` on SQLite, which serves with one worker: the file's writer
    env = server_env(database_url, tmp_path)
    tokens = mint(env, "ops", "admin"), mint(env, "till", "pos")
    server = Server(env, tmp_path / "server.log")
    server.several = []
    try:
        server.start()
        assert "serving SQLite with 1 worker, not 2" in server.log_path.read_text()
        # when 16 clients race 1,008 one-cent debits at a card of $6.00, exactly $6.00 is spent
        race_debits_over_http(server, *tokens)
    finally:
        server.stop()
    verify = giftcards(env, "ledger", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def race_debits_over_http(server: Server, admin: str, pos: str) -> None:
    """A card loaded with $6.00, 16 clients sending 1,008 one-cent debits by code at it at once:
    every request answered, each cent spent once, none beyond."""
    card_id = fund_over_http(server.url, admin, CODE, "6.00")
    started = time.monotonic()
    seen = Tally.merge(in_parallel(THREADS, lambda _: _http_client(server.url, pos), timeout=150))
    elapsed = time.monotonic() - started
    assert seen.errors == []
    assert (len(seen.balances), seen.refused) == (FUNDED, THREADS * PER_THREAD - FUNDED)
    assert sorted(seen.balances) == list(range(FUNDED))
    assert balance_over_http(server.url, admin, card_id) == "0.00"
    print(f"http: {FUNDED} debited, {seen.refused} refused in {elapsed:.1f}s")
