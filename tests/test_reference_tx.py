"""The money-path reference of `scripts/bench tx` debits as our server does, on both databases: the
same answer's fields, one card's balance moving cent by cent between the two servers, a PIN
checked, holds respected, refusals leaving every card alone, and a ledger that still verifies."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from app.config import Settings
from app.enums import CodeType
from app.services import Services
from app.store import ledger as ledger_store
from tests.conftest import ROOT, answered, fund, gql

sys.path.insert(0, str(ROOT / "scripts"))
import bench_tx  # the scripts import each other by module name
import reference_tx_server

CODE, OTHER, PIN_CODE = "REFX00000001", "REFX00000002", "REFX00000003"


@pytest.fixture
def reference(settings: Settings, services: Services) -> Iterator[TestClient]:
    with TestClient(reference_tx_server.TxReferenceApp(settings, pool_size=2)) as client:
        yield client


@pytest.fixture
def cards(seed: Callable[..., int], services: Services) -> dict[str, int]:
    """Three funded cards: 10.00 on CODE, 10.00 on OTHER, 10.00 on PIN_CODE (PIN 4321)."""
    ids = {
        CODE: seed({CodeType.PHYSICAL: CODE}),
        OTHER: seed({CodeType.PHYSICAL: OTHER}),
        PIN_CODE: seed({CodeType.PHYSICAL: PIN_CODE}, pin="4321"),
    }
    for card_id in ids.values():
        fund(services.engine, card_id, 1000)
    return ids


def debit(client: TestClient, token: str, code: str, amount: str = "-0.01", **extra: Any) -> dict[str, Any]:
    trans = {"codeType": "PHYSICAL", "code": code, "transType": "USE", "amount": amount, **extra}
    return gql(client, bench_tx.DEBIT, {"trans": trans}, token=token)


def balances(services: Services) -> dict[int, int]:
    with services.engine.connect() as connection:
        return dict(connection.execute(text("SELECT id, balance FROM giftcards")).all())  # type: ignore[arg-type]


def clean(services: Services) -> bool:
    return ledger_store.verify(services.engine, datetime.now(UTC))[1] == []


def test_the_reference_debits_as_ours(client, reference, mint, services, cards):
    token = mint(roles=["pos"])
    first = answered(debit(client, token, CODE), "giftcardTransAdd")
    theirs = answered(debit(reference, token, CODE), "giftcardTransAdd")
    last = answered(debit(client, token, CODE), "giftcardTransAdd")

    assert set(theirs) == set(first)
    assert theirs["giftcardId"] == first["giftcardId"] == str(cards[CODE])
    assert [first["balanceBefore"], theirs["balanceBefore"], last["balanceBefore"]] == [
        "10.00",
        "9.99",
        "9.98",
    ]
    assert theirs == {
        **theirs,
        "status": "COMPLETED",
        "amount": "-0.01",
        "balance": "9.98",
        "availableBalance": "9.98",
        "balanceAfter": "9.98",
    }
    assert bench_tx.took_amount(theirs)
    assert len({first["id"], theirs["id"], last["id"]}) == 3
    assert balances(services) == {cards[CODE]: 997, cards[OTHER]: 1000, cards[PIN_CODE]: 1000}
    with services.engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT trans_type, status, amount, balance_before, balance_after, code_type, code_id, "
                "created_by, settled_at IS NOT NULL FROM giftcard_transactions WHERE id = :id"
            ),
            {"id": int(theirs["id"])},
        ).one()
        code_id = connection.execute(
            text("SELECT id FROM giftcard_codes WHERE giftcard_id = :card"), {"card": cards[CODE]}
        ).scalar_one()
    assert tuple(row) == ("USE", "COMPLETED", -1, 999, 998, "PHYSICAL", code_id, "reference", True)
    assert clean(services)


def test_the_reference_checks_the_pin(reference, mint, services, cards):
    token = mint(roles=["pos"])
    for refused in (debit(reference, token, PIN_CODE, pin="1234"), debit(reference, token, PIN_CODE)):
        assert refused["data"] == {"giftcardTransAdd": None} and refused["errors"]
    assert "errors" in debit(reference, token, CODE, pin="4321")  # a PIN for a code without one
    assert balances(services) == {cards[CODE]: 1000, cards[OTHER]: 1000, cards[PIN_CODE]: 1000}

    done = answered(debit(reference, token, PIN_CODE, pin="4321"), "giftcardTransAdd")
    assert (done["balanceBefore"], done["balanceAfter"]) == ("10.00", "9.99")
    assert balances(services) == {cards[CODE]: 1000, cards[OTHER]: 1000, cards[PIN_CODE]: 999}
    assert clean(services)


def test_the_reference_takes_no_more_than_is_available(client, reference, mint, services, cards):
    pos = mint(roles=["pos"])
    hold = answered(debit(client, pos, CODE, "-9.97", authorizeOnly=True), "giftcardTransAdd")
    assert hold["availableBalance"] == "0.03"

    refused = debit(reference, pos, CODE, "-0.04")
    assert refused["data"] == {"giftcardTransAdd": None} and refused["errors"]
    assert balances(services) == {cards[CODE]: 1000, cards[OTHER]: 1000, cards[PIN_CODE]: 1000}

    done = answered(debit(reference, pos, CODE, "-0.03"), "giftcardTransAdd")
    assert (done["balance"], done["availableBalance"]) == ("9.97", "0.00")
    assert "errors" in debit(reference, pos, OTHER, "-0.01", authorizeOnly=True)  # not served: no hold
    assert "errors" in debit(reference, pos, "REFX00000009")  # no such code
    assert balances(services) == {cards[CODE]: 997, cards[OTHER]: 1000, cards[PIN_CODE]: 1000}
    assert clean(services)


def test_every_served_debit_is_a_use_by_code(reference, mint, services, cards):
    token = mint(roles=["pos"])
    credit = {"codeType": "PHYSICAL", "code": CODE, "transType": "ADD", "amount": "1.00"}
    refused = gql(reference, bench_tx.DEBIT, {"trans": credit}, token=token)
    assert refused["errors"][0]["message"].startswith("only USE debits by code")
    partial = debit(reference, token, CODE, allowPartial=True)
    assert partial["errors"][0]["message"].startswith("only USE debits by code")
    assert balances(services) == {cards[CODE]: 1000, cards[OTHER]: 1000, cards[PIN_CODE]: 1000}
