"""The audit trail: an event per mutation (done, replayed, refused) in the mutation's transaction,
refusals counted per minute (tests/test_audit_refusals.py), an event per code disclosed in full,
request id and client address, append-only at the database, never a code or PIN, and the
`auditEvents` query (ViewAuditLog) with its filters and pages."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, exc, select, text

from app.domain.audit import AUDIT_CURSOR
from app.enums import CodeType
from app.models import AuditEvent
from app.store import audit as audit_store
from app.store.audit import AuditRecord
from tests.conftest import answered, error_codes, gql

ADD = """mutation Add($giftcard: GiftCardAddInput!, $key: String) {
  giftcardAdd(giftcard: $giftcard, idempotencyKey: $key) { id codes { codeType code isMasked } } }"""
EDIT = """mutation Edit($giftcard: GiftCardEditInput!) { giftcardEdit(giftcard: $giftcard) { id } }"""
BLOCK = "mutation B($id: ID!) { giftcardBlock(id: $id) { id state } }"
UNBLOCK = "mutation U($id: ID!) { giftcardUnblock(id: $id) { id state } }"
DEACTIVATE = "mutation D($id: ID!) { giftcardDeactivate(id: $id) { id state } }"
TRANS = """mutation T($trans: GiftCardTransInput!, $key: String) {
  giftcardTransAdd(trans: $trans, idempotencyKey: $key) { id giftcardId status } }"""
CAPTURE = "mutation C($id: ID!) { giftcardTransCapture(id: $id) { id status } }"
CANCEL = "mutation X($id: ID!) { giftcardTransCancel(id: $id) { id status } }"
RESERVE = """mutation R($count: Int!) {
  giftcardReserveCodes(count: $count, agency: "print-shop", requestName: "batch-1") { id codes } }"""
LOOKUP = """query L($code: String, $id: ID) {
  giftcard(code: $code, id: $id) { results { id codes { codeType code isMasked } } } }"""
LISTING = "query { giftcards { edges { node { id codes { codeType code isMasked } } } } }"
EVENTS = """query E($first: Int, $after: String, $filter: AuditEventFilter) {
  auditEvents(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id occurredAt action outcome subject giftcardId field requestId
                          clientAddress count } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""

PHYSICAL = "AUDITPHYS0001"
PERSONAL = "AUDITPERSONAL00000001"
PIN = "80417723"


@pytest.fixture
def admin(mint):
    return mint(roles=["admin"], sub="admin")


@pytest.fixture
def office(mint):
    """Back office: creates and edits cards, sees PERSONAL codes masked, cannot read the trail."""
    return mint(roles=["backoffice"], sub="office")


@pytest.fixture
def shop(mint):
    return mint(roles=["storefront"], sub="shop")


@pytest.fixture
def pos(mint):
    return mint(roles=["pos"], sub="pos")


@pytest.fixture
def card(seed):
    return seed(
        {CodeType.PHYSICAL: PHYSICAL, CodeType.PERSONAL: PERSONAL}, member_id="M1", balance=1000, pin=PIN
    )


def _rows(services) -> list[dict]:
    """Every event, with the refusal counts still held in memory written first (as at shutdown)."""
    services.audit.flush_refusals(everything=True)
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    with services.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(table).order_by(table.c.id))]


def _summary(services) -> list[tuple]:
    return [
        (row["action"], row["outcome"], row["subject"], row["giftcard_id"], row["field"])
        for row in _rows(services)
    ]


@contextmanager
def _statements(services) -> Iterator[list[str]]:
    """Every SQL statement the server sends while the block runs."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many):
        seen.append(statement)

    event.listen(services.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(services.engine, "before_cursor_execute", record)


_WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|BEGIN IMMEDIATE)", re.IGNORECASE)


# --- mutations --------------------------------------------------------------------------------------


def test_every_kind_of_mutation_records_who_did_what_to_which_card(client, admin, services):
    # given an operator who creates a card, edits, blocks, unblocks, funds, spends and deactivates it
    card_id = int(
        answered(
            gql(client, ADD, {"giftcard": {"physicalCode": PHYSICAL, "physicalPin": PIN}}, token=admin),
            "giftcardAdd",
        )["id"]
    )
    gql(client, EDIT, {"giftcard": {"id": str(card_id), "note": "handle with care"}}, token=admin)
    gql(client, BLOCK, {"id": str(card_id)}, token=admin)
    gql(client, UNBLOCK, {"id": str(card_id)}, token=admin)
    by_id = {"giftcardId": str(card_id)}
    answered(
        gql(client, TRANS, {"trans": {**by_id, "transType": "ADD", "amount": "20.00"}}, token=admin),
        "giftcardTransAdd",
    )
    hold = answered(
        gql(
            client,
            TRANS,
            {"trans": {**by_id, "transType": "USE", "amount": "-5.00", "authorizeOnly": True}},
            token=admin,
        ),
        "giftcardTransAdd",
    )
    answered(gql(client, CAPTURE, {"id": hold["id"]}, token=admin), "giftcardTransCapture")
    hold = answered(
        gql(
            client,
            TRANS,
            {"trans": {**by_id, "transType": "USE", "amount": "-1.00", "authorizeOnly": True}},
            token=admin,
        ),
        "giftcardTransAdd",
    )
    answered(gql(client, CANCEL, {"id": hold["id"]}, token=admin), "giftcardTransCancel")
    answered(gql(client, RESERVE, {"count": 2}, token=admin), "giftcardReserveCodes")
    answered(gql(client, DEACTIVATE, {"id": str(card_id)}, token=admin), "giftcardDeactivate")
    # then each mutation has its event, naming the caller and the card (a reservation names none)
    assert [row[:4] for row in _summary(services)] == [
        ("giftcardAdd", "OK", "admin", card_id),
        ("giftcardEdit", "OK", "admin", card_id),
        ("giftcardBlock", "OK", "admin", card_id),
        ("giftcardUnblock", "OK", "admin", card_id),
        ("giftcardTransAdd", "OK", "admin", card_id),
        ("giftcardTransAdd", "OK", "admin", card_id),
        ("giftcardTransCapture", "OK", "admin", card_id),
        ("giftcardTransAdd", "OK", "admin", card_id),
        ("giftcardTransCancel", "OK", "admin", card_id),
        ("giftcardReserveCodes", "OK", "admin", None),
        ("giftcardDeactivate", "OK", "admin", card_id),
    ]
    occurred = [row["occurred_at"] for row in _rows(services)]
    assert occurred == sorted(occurred)


def test_a_mutation_whose_event_cannot_be_written_is_not_kept(client, office, services, monkeypatch):
    # given an audit table that refuses a mutation's own event
    append = audit_store.append

    def failing(target, records):
        if any(record.outcome == "OK" for record in records):
            raise RuntimeError("the audit table is unavailable")
        append(target, records)

    monkeypatch.setattr(audit_store, "append", failing)
    # when a card is created
    body = gql(client, ADD, {"giftcard": {"physicalCode": PHYSICAL}}, token=office)
    # then the whole mutation is rolled back with its event: no card, and the refusal is recorded
    assert error_codes(body) == ["INTERNAL"]
    with services.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM giftcards")).scalar() == 0
    assert _summary(services) == [("giftcardAdd", "INTERNAL", "office", None, None)]


def test_a_refused_mutation_records_its_error_code_and_nothing_else(client, pos, shop, card, services):
    # when callers are refused for several reasons
    by_code = {"codeType": "PHYSICAL", "code": PHYSICAL}
    refusals = {
        "FORBIDDEN": (shop, {**by_code, "pin": PIN, "transType": "USE", "amount": "-1.00"}),
        "CARD_NOT_USABLE": (pos, {**by_code, "pin": "11112222", "transType": "USE", "amount": "-1.00"}),
        "INSUFFICIENT_FUNDS": (pos, {**by_code, "pin": PIN, "transType": "USE", "amount": "-99.00"}),
        "BAD_USER_INPUT": (pos, {**by_code, "pin": PIN, "transType": "USE", "amount": "-1.001"}),
    }
    for code, (token, trans) in refusals.items():
        assert error_codes(gql(client, TRANS, {"trans": trans}, token=token)) == [code]
    # and a caller without a token tries too
    assert error_codes(gql(client, TRANS, {"trans": refusals["FORBIDDEN"][1]})) == ["UNAUTHENTICATED"]
    # then each refusal has its event with the error code, no OK event, and nothing for no token
    assert _summary(services) == [
        ("giftcardTransAdd", "FORBIDDEN", "shop", None, None),
        ("giftcardTransAdd", "CARD_NOT_USABLE", "pos", None, None),
        ("giftcardTransAdd", "INSUFFICIENT_FUNDS", "pos", None, None),
        ("giftcardTransAdd", "BAD_USER_INPUT", "pos", None, None),
    ]
    with services.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM giftcard_transactions")).scalar() == 0


@pytest.mark.settings(code_attempt_limits="1/minute")
def test_a_rate_limited_mutation_is_recorded(client, mint, card, services):
    pos = mint(permissions=sorted(services.policy.roles["pos"]), sub="pos")  # the setting's budget
    trans = {"codeType": "PHYSICAL", "code": PHYSICAL, "pin": PIN, "transType": "USE", "amount": "-1.00"}
    answered(gql(client, TRANS, {"trans": trans}, token=pos), "giftcardTransAdd")  # a hit: given back
    wrong = {**trans, "pin": "0000"}
    assert error_codes(gql(client, TRANS, {"trans": wrong}, token=pos)) == ["CARD_NOT_USABLE"]  # kept
    assert error_codes(gql(client, TRANS, {"trans": trans}, token=pos)) == ["RATE_LIMITED"]
    assert [row[:4] for row in _summary(services)] == [
        ("giftcardTransAdd", "OK", "pos", card),
        ("giftcardTransAdd", "CARD_NOT_USABLE", "pos", None),
        ("giftcardTransAdd", "RATE_LIMITED", "pos", None),
    ]


def test_an_unexpected_error_is_recorded_as_internal(client, office, services, monkeypatch):
    from app.domain import cards

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cards, "_seal", broken)
    body = gql(client, ADD, {"giftcard": {"physicalCode": PHYSICAL}}, token=office)
    assert error_codes(body) == ["INTERNAL"]
    assert _summary(services) == [("giftcardAdd", "INTERNAL", "office", None, None)]


def test_a_replay_is_recorded_apart_and_a_reused_key_as_a_conflict(client, pos, card, services):
    trans = {"codeType": "PHYSICAL", "code": PHYSICAL, "pin": PIN, "transType": "USE", "amount": "-1.00"}
    first = answered(gql(client, TRANS, {"trans": trans, "key": "k-1"}, token=pos), "giftcardTransAdd")
    again = answered(gql(client, TRANS, {"trans": trans, "key": "k-1"}, token=pos), "giftcardTransAdd")
    other = {**trans, "amount": "-2.00"}
    assert error_codes(gql(client, TRANS, {"trans": other, "key": "k-1"}, token=pos)) == ["CONFLICT"]
    assert first == again
    assert [row[:4] for row in _summary(services)] == [
        ("giftcardTransAdd", "OK", "pos", card),
        ("giftcardTransAdd", "REPLAYED", "pos", card),
        ("giftcardTransAdd", "CONFLICT", "pos", None),
    ]


# --- disclosures ------------------------------------------------------------------------------------


def test_a_generated_personal_code_is_recorded_as_disclosed_also_on_replay(client, office, services):
    # given a back-office operator, who sees PERSONAL codes masked except the one just generated
    giftcard = {"physicalCode": PHYSICAL, "addPersonalCode": True, "memberId": "M7"}
    created = answered(gql(client, ADD, {"giftcard": giftcard, "key": "add-1"}, token=office), "giftcardAdd")
    assert {code["codeType"]: code["isMasked"] for code in created["codes"]} == {
        "PHYSICAL": False,
        "PERSONAL": False,
    }
    card_id = int(created["id"])
    # when the same request is sent again with its idempotency key
    answered(gql(client, ADD, {"giftcard": giftcard, "key": "add-1"}, token=office), "giftcardAdd")
    # then the generated code's disclosure is recorded each time (the PHYSICAL code, which every
    # holder of UsePhysicalGiftCardCodes sees in full, is not a disclosure)
    assert _summary(services) == [
        ("giftcardAdd", "OK", "office", card_id, None),
        ("CODE_DISCLOSED", "OK", "office", card_id, "PERSONAL"),
        ("giftcardAdd", "REPLAYED", "office", card_id, None),
        ("CODE_DISCLOSED", "OK", "office", card_id, "PERSONAL"),
    ]


def test_lookups_and_listings_that_unmask_codes_are_recorded(client, admin, card, seed, services):
    other = seed({CodeType.PERSONAL: "AUDITPERSONAL00000002"}, member_id="M2")
    # when a caller with ViewUnmaskedGiftCardCodes looks cards up and lists them
    for variables in ({"code": PHYSICAL}, {"id": str(card)}):
        (found,) = answered(gql(client, LOOKUP, variables, token=admin), "giftcard")["results"]
        assert {code["codeType"]: code["isMasked"] for code in found["codes"]} == {
            "PHYSICAL": False,
            "PERSONAL": False,
        }
    answered(gql(client, LISTING, token=admin), "giftcards")
    # and looks a card up by its PERSONAL code (which it supplied, so it learns nothing)
    answered(gql(client, LOOKUP, {"code": PERSONAL.lower()}, token=admin), "giftcard")
    # then each PERSONAL code shown in full is recorded, once per time it was shown
    disclosed = ("CODE_DISCLOSED", "OK", "admin")
    assert _summary(services) == [
        (*disclosed, card, "PERSONAL"),
        (*disclosed, card, "PERSONAL"),
        (*disclosed, card, "PERSONAL"),
        (*disclosed, other, "PERSONAL"),
    ]


def test_masked_lookups_and_listings_write_nothing(client, shop, office, card, services):
    # when the storefront looks the card up by each code, and the back office lists and finds it,
    # all with PERSONAL codes masked
    with _statements(services) as statements:
        for code in (PHYSICAL, PERSONAL):
            (found,) = answered(gql(client, LOOKUP, {"code": code}, token=shop), "giftcard")["results"]
            assert {c["codeType"]: c["isMasked"] for c in found["codes"]} == {
                "PHYSICAL": False,
                "PERSONAL": True,
            }
        answered(gql(client, LISTING, token=office), "giftcards")
        answered(gql(client, LOOKUP, {"id": str(card)}, token=office), "giftcard")
    # then not one statement wrote (nor, on SQLite, took the write lock)
    assert statements
    assert [statement for statement in statements if _WRITES.match(statement)] == []
    assert _rows(services) == []


# --- who, from where --------------------------------------------------------------------------------


def test_request_id_and_client_address_are_recorded(client, office, admin, card, services):
    headers = {"X-Request-ID": "audit-req-0001", "Authorization": f"Bearer {office}"}
    response = client.post("/graphql", headers=headers, json={"query": BLOCK, "variables": {"id": str(card)}})
    assert response.status_code == 200 and "errors" not in response.json()
    # a request without an id of its own gets the one the server made up (and sends back)
    response = client.post(
        "/graphql",
        headers={"Authorization": f"Bearer {admin}"},
        json={"query": LOOKUP, "variables": {"id": str(card)}},
    )
    generated = response.headers["x-request-id"]
    rows = _rows(services)
    assert [(row["action"], row["request_id"], row["client_address"]) for row in rows] == [
        ("giftcardBlock", "audit-req-0001", "testclient"),
        ("CODE_DISCLOSED", generated, "testclient"),
    ]


# --- append-only, and no secrets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET outcome = 'OK'",
        "UPDATE audit_events SET subject = NULL WHERE id = (SELECT MIN(id) FROM audit_events)",
        "DELETE FROM audit_events",
        "DELETE FROM audit_events WHERE id = (SELECT MIN(id) FROM audit_events)",
    ],
)
def test_the_table_refuses_updates_and_deletes(client, office, card, services, statement):
    gql(client, BLOCK, {"id": str(card)}, token=office)
    before = _rows(services)
    assert before
    with pytest.raises(exc.DBAPIError, match="append-only"), services.engine.begin() as connection:
        connection.execute(text(statement))
    assert _rows(services) == before


def test_the_trail_holds_no_code_pin_note_or_key(client, admin, pos, office, services):
    # given mutations, replays, refusals and lookups that handle codes, PINs, notes and keys
    note, key = "customer-secret-note-4411", "idem-key-secret-9922"
    created = answered(
        gql(
            client,
            ADD,
            {
                "giftcard": {
                    "physicalCode": PHYSICAL,
                    "physicalPin": PIN,
                    "externalCode": "AUDITEXTN0001",
                    "addPersonalCode": True,
                    "memberId": "M9",
                    "note": note,
                },
                "key": key,
            },
            token=admin,
        ),
        "giftcardAdd",
    )
    answered(
        gql(
            client,
            ADD,
            {
                "giftcard": {
                    "physicalCode": PHYSICAL,
                    "physicalPin": PIN,
                    "externalCode": "AUDITEXTN0001",
                    "addPersonalCode": True,
                    "memberId": "M9",
                    "note": note,
                },
                "key": key,
            },
            token=admin,
        ),
        "giftcardAdd",
    )
    codes = [code["code"] for code in created["codes"]]
    wrong = {
        "codeType": "PHYSICAL",
        "code": PHYSICAL,
        "pin": "55556666",
        "transType": "USE",
        "amount": "-1.00",
        "note": note,
    }
    gql(client, TRANS, {"trans": wrong, "key": key}, token=pos)
    gql(client, LOOKUP, {"code": codes[0]}, token=admin)
    gql(client, LISTING, token=admin)
    gql(client, ADD, {"giftcard": {"physicalCode": "NOTAVALID!CODE", "physicalPin": PIN}}, token=office)
    # when the whole trail is read back as text
    rows = _rows(services)
    dump = "\n".join(repr(sorted(row.items())) for row in rows).upper()
    # then it has events, and none of those values in any spelling
    assert len(rows) >= 6
    needles = [*codes, *(code[:-4] for code in codes), PIN, "55556666", note, key, "NOTAVALID"]
    assert [needle for needle in needles if needle.upper() in dump] == []


# --- the auditEvents query ----------------------------------------------------------------------------


def _append(services, count: int, **values) -> None:
    now = datetime.now(UTC)
    base = {
        "occurred_at": now,
        "action": "giftcardTransAdd",
        "outcome": "OK",
        "subject": "pos",
        "giftcard_id": 7,
        "field": None,
        "request_id": "r",
        "client_address": "10.0.0.1",
        "store_id": "default",  # a caller of the default store's
    }
    records = [AuditRecord(**{**base, **values}) for _ in range(count)]
    with services.engine.begin() as connection:
        audit_store.append(connection, records)


def _events(client, token, **variables) -> dict:
    return answered(gql(client, EVENTS, variables, token=token), "auditEvents")


def _refused(client, token, **variables) -> tuple[str, str | None]:
    body = gql(client, EVENTS, variables, token=token)
    assert body["data"] == {"auditEvents": None}
    (code,) = error_codes(body)
    return code, body["errors"][0]["extensions"].get("field")


def test_reading_the_trail_needs_view_audit_log(client, mint, office, services):
    _append(services, 1)
    assert _refused(client, None) == ("UNAUTHENTICATED", None)
    assert _refused(client, office) == ("FORBIDDEN", None)
    auditor = mint(permissions=["ViewAuditLog"], sub="auditor")
    (edge,) = _events(client, auditor)["edges"]
    node = edge["node"]
    assert {
        key: node[key]
        for key in (
            "action",
            "outcome",
            "subject",
            "giftcardId",
            "field",
            "requestId",
            "clientAddress",
            "count",
        )
    } == {
        "action": "giftcardTransAdd",
        "outcome": "OK",
        "subject": "pos",
        "giftcardId": "7",
        "field": None,
        "requestId": "r",
        "clientAddress": "10.0.0.1",
        "count": 1,
    }
    assert datetime.fromisoformat(node["occurredAt"]).tzinfo is not None


def test_only_the_admin_role_has_view_audit_log(services):
    holders = [role for role, permissions in services.policy.roles.items() if "ViewAuditLog" in permissions]
    assert holders == ["admin"]
    assert services.policy.catalogue["ViewAuditLog"] == "high"


def test_pages_go_forward_oldest_first(client, admin, services):
    _append(services, 5)
    ids = [int(row["id"]) for row in _rows(services)]
    page = _events(client, admin, first=2)
    assert [int(edge["node"]["id"]) for edge in page["edges"]] == ids[:2]
    assert (page["pageInfo"]["hasNextPage"], page["pageInfo"]["hasPreviousPage"]) == (True, False)
    seen = ids[:2]
    while page["pageInfo"]["hasNextPage"]:
        page = _events(client, admin, first=2, after=page["pageInfo"]["endCursor"])
        assert page["pageInfo"]["hasPreviousPage"] is True
        seen += [int(edge["node"]["id"]) for edge in page["edges"]]
    assert seen == ids
    # the default page holds 30 events
    _append(services, 40)
    assert len(_events(client, admin)["edges"]) == 30


def test_filters_combine(client, admin, services):
    # given events of several callers, cards, actions, outcomes and times
    now = datetime.now(UTC)
    _append(services, 1, subject="alice", giftcard_id=1, occurred_at=now - timedelta(days=2))
    _append(services, 1, subject="alice", giftcard_id=2, action="CODE_DISCLOSED", field="PERSONAL")
    _append(services, 1, subject="bob", giftcard_id=1, outcome="FORBIDDEN")
    _append(services, 1, subject="bob", giftcard_id=None, action="giftcardReserveCodes")

    def subjects_and_cards(**filter_) -> list[tuple]:
        page = _events(client, admin, filter=filter_)
        return [(edge["node"]["subject"], edge["node"]["giftcardId"]) for edge in page["edges"]]

    # then each condition narrows the trail, and together they combine with AND
    assert subjects_and_cards(subject="alice") == [("alice", "1"), ("alice", "2")]
    assert subjects_and_cards(giftcardId="1") == [("alice", "1"), ("bob", "1")]
    assert subjects_and_cards(action="CODE_DISCLOSED") == [("alice", "2")]
    assert subjects_and_cards(outcome="FORBIDDEN") == [("bob", "1")]
    day_ago = (now - timedelta(days=1)).isoformat()
    assert subjects_and_cards(occurredBefore=day_ago) == [("alice", "1")]
    assert subjects_and_cards(occurredAfter=day_ago, subject="alice") == [("alice", "2")]
    assert subjects_and_cards(subject="alice", outcome="FORBIDDEN") == []
    # a time in another zone means the same moment
    in_tokyo = (now - timedelta(days=1)).astimezone(timezone(timedelta(hours=9))).isoformat()
    assert subjects_and_cards(occurredBefore=in_tokyo) == [("alice", "1")]


def _cursor(text_: str) -> str:
    return base64.urlsafe_b64encode(text_.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"first": 0}, "first"),
        ({"first": 101}, "first"),
        ({"after": "not-a-cursor"}, "after"),
        ({"after": _cursor("gc:1")}, "after"),  # a card listing's cursor
        ({"after": _cursor(f"{AUDIT_CURSOR}01")}, "after"),
        ({"filter": {"occurredAfter": "2027-01-01T00:00:00"}}, "occurredAfter"),
        ({"filter": {"occurredBefore": "2027-01-01T00:00:00"}}, "occurredBefore"),
        (
            {"filter": {"occurredAfter": "2027-01-02T00:00:00Z", "occurredBefore": "2027-01-01T00:00:00Z"}},
            "occurredBefore",
        ),
        (
            {"filter": {"occurredAfter": "2027-01-01T00:00:00Z", "occurredBefore": "2027-01-01T00:00:00Z"}},
            "occurredBefore",
        ),
        ({"filter": {"subject": "s" * 129}}, "subject"),
        ({"filter": {"subject": ""}}, "subject"),
        ({"filter": {"action": "a" * 65}}, "action"),
        ({"filter": {"outcome": "o" * 33}}, "outcome"),
        ({"filter": {"outcome": "OK\n"}}, "outcome"),
        ({"filter": {"giftcardId": "abc"}}, "giftcardId"),
        ({"filter": {"giftcardId": "0"}}, "giftcardId"),
    ],
)
def test_bad_input_is_refused_naming_the_field(client, admin, variables, field):
    assert _refused(client, admin, **variables) == ("BAD_USER_INPUT", field)


def test_the_longest_accepted_filters_find_nothing_rather_than_fail(client, admin, services):
    _append(services, 1)
    page = _events(client, admin, filter={"subject": "s" * 128, "action": "a" * 64, "outcome": "o" * 32})
    assert page["edges"] == []
