"""Generated GraphQL requests against the real server: no 5xx and no internal detail in any answer.

Schemathesis reads the schema by introspection from the running server and draws documents for every
query and mutation field, valid ones and ones that break the schema, each sent with an admin token so
that the resolvers run instead of stopping at a permission check. Dictionaries of known values and a
hook on the documents' shape carry many of them past input validation into the domain; the same
dictionaries, and strategies for the time scalars, mix in extreme values of every scalar (dates and
times at and beyond the ends of the calendar, huge and odd amounts and ids, very long strings). The
draws are derandomized: every run sends the same requests.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import graphql
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.graphql import nodes

from app.domain.idempotency import MAX_KEY_LENGTH
from app.domain.pages import encode_cursor
from tests.test_concurrency import REQUEST_TIMEOUT, giftcards, mint, running_server, server_env

# Draws per root field and mode (14 fields: about 1,000 requests, 30 s on two cores). Hypothesis may
# stop early on a field whose documents run out, so the total is counted, not assumed.
EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 12}
MIN_REQUESTS = 500
# Text that only a leaked exception or an unexpected (masked) error puts into a response.
INTERNAL_TEXT = ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3", "Internal error")
SHOWN_PER_PROBLEM = 3

# A string that still fits in a request body (GIFTCARDS_MAX_BODY_BYTES, 64 KiB), so that it reaches the
# resolvers, and one that does not (HTTP 413).
LONG = "x" * 30_000
TOO_LONG = "7" * 100_000

# Values that get past input validation (the demo cards' ids, codes, PIN and members, amounts,
# currencies), mixed with edge cases of each. They replace most generated arguments of these names
# (nulls included); the rest stay random.
DICTIONARIES: dict[str, list[str | int]] = {
    "ids": [
        *map(str, range(1, 13)),
        "0",
        "-1",
        "2147483648",
        "9223372036854775808",
        "1e3",
        "1e9",
        "99999999999999999999",
        "-2147483648",
        "",
        " 1",
        "\uff11",
        "9" * 1000,
    ],
    # Transactions after the demo cards' five imports: those the run itself writes.
    "entries": [str(n) for n in range(6, 40)],
    "codes": [
        "G59220000045",
        "g592-2000-0060",
        "G59220000052",
        "K7MNPQ2RSTUV3WXYZ4AB",
        "EXT-77001234",
        "EXT-77009999",
        "FUZZPHYS0001",
        "fuzz ext 0001",
        "ab-c",
        "Z" * 65,
        LONG,
    ],
    "pins": ["4321", "1234", "000000000000", "12", "1234567890123", "12a4", "9" * 1000],
    "members": ["C000000113", "C000000212", "FUZZMEMBER1", "", LONG],
    # The trusted load that used to overflow a balance, and numbers in every spelling Python accepts.
    "amounts": [
        "1.00",
        "-1.00",
        "0.01",
        "-0.01",
        "25",
        "-25.00",
        "0",
        "-0.00",
        "0.001",
        "1e2",
        "NaN",
        "-Infinity",
        "99999999999999999999.99",
        "-9223372036854775808",
        "+5",
        " 5",
        "10000000000000.00",
        "1000000000.00",
        "9999999999999999",
        "-9999999999999999.999999",
        "9" * 40,
        "1e400",
        "-0",
        "+1",
        "1_000",
        "\u0663",
        LONG,
    ],
    "currencies": ["USD", "JPY", "BHD", "EUR", "usd", "XXX", "ZZZ"],
    "counts": [1, 2, 0, -1, 500, 501, 2**31 - 1, -(2**31)],
    "pages": [1, 2, 100, 0, 101, -1, 2**31 - 1, -(2**31)],
    "names": ["print-run-1", "agency-1", LONG],
    "texts": ["shop-7", "REF 0042", "a note: ok", "x" * 128, "x" * 129, "tab\there", "\x00", LONG, TOO_LONG],
    "cursors": [
        encode_cursor(1, "gc:"),
        encode_cursor(10**17, "gc:"),
        encode_cursor(1, "gt:"),
        "",
        "not a cursor",
        LONG,
    ],
    "keys": ["", "k" * 129, LONG],
}
BINDINGS = {
    "ids": ["*.*.id", "*.*.giftcard.id", "*.*.trans.giftcardId", "*.*.filter.giftcardId"],
    "entries": ["Mutation.giftcardTransCapture.id", "Mutation.giftcardTransCancel.id"],
    "codes": [
        "*.*.code",
        "*.*.trans.code",
        "*.*.filter.code",
        "*.*.giftcard.physicalCode",
        "*.*.giftcard.externalCode",
    ],
    "pins": ["*.*.trans.pin", "*.*.giftcard.physicalPin"],
    "members": ["*.*.memberId", "*.*.giftcard.memberId", "*.*.filter.memberId"],
    "amounts": ["*.*.amount", "*.*.trans.amount"],
    "currencies": ["*.*.giftcard.currency"],
    "counts": ["*.*.count"],
    "pages": ["*.*.first"],
    "names": ["*.*.requestName", "*.*.agency"],
    "texts": [
        f"*.*.{holder}{name}"
        for holder in ("", "trans.", "giftcard.", "filter.")
        for name in ("sourceId", "refNo", "note", "reason", "subject", "action", "outcome")
    ],
    "cursors": ["*.*.after"],
    "keys": ["*.*.idempotencyKey"],
}
SUBSTITUTED = 0.75
# One idempotency key in ten is an extreme one: it stops its mutation before the domain, so no more.
# The others are drawn and then derived (see `rekeyed`).
SUBSTITUTED_AT = {"keys": 0.1}

# The time scalars, which dictionaries do not reach: the ends of the calendar, with and without
# offsets that take them beyond it in UTC, and ordinary days at any offset (or none).
EXTREME_TIMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "0001-01-02T00:00:00-14:00",
    "9999-12-30T23:59:59Z",
    "2027-01-01T00:00:00+23:59",
    "2027-01-01T00:00:00",
]
EXTREME_DATES = ["0001-01-01", "9999-12-31", "10000-01-01", "2027-02-30", "2027-01-01T00:00:00Z"]
OFFSETS = ["Z", "+14:00", "-14:00", "+05:45", ""]


def register_time_scalars() -> None:
    times = st.builds("{}T{}{}".format, st.dates(), st.times(), st.sampled_from(OFFSETS))
    dates = st.dates().map(str)
    for name, extremes, drawn in (("DateTime", EXTREME_TIMES, times), ("Date", EXTREME_DATES, dates)):
        schemathesis.graphql.scalar(name, st.one_of(st.sampled_from(extremes), drawn).map(nodes.String))


def fuzz_config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "dictionaries": {name: {"values": values} for name, values in DICTIONARIES.items()},
            "parameters": {
                key: {"dictionary": name, "probability": SUBSTITUTED_AT.get(name, SUBSTITUTED)}
                for name, keys in BINDINGS.items()
                for key in keys
            },
        }
    )


# --- documents: steered past the checks that would stop nearly every random one ------------------

# Where the API takes exactly one way to a card and the schema cannot say so, a ``map_body`` hook keeps
# the first group of arguments (under ``trans``: input fields) that a document gives a value; one that
# gives none gets the first group's first argument, which the "ids" dictionary (applied after the hook)
# then fills in most of the time. Otherwise few lookups and transactions would get past that check.
ONE_WAY_TO_A_CARD: dict[str, tuple[str | None, tuple[tuple[str, ...], ...]]] = {
    "Query.giftcard": (None, (("id",), ("code", "codeType"), ("memberId",))),
    "Mutation.giftcardTransAdd": ("trans", (("giftcardId",), ("code", "codeType", "pin"))),
}
PLACEHOLDER_ID = "1"


def replaced(node: Any, **changes: Any) -> Any:
    """A copy of an (immutable) AST node with some of its fields changed."""
    return type(node)(**{**{key: getattr(node, key) for key in node.keys}, **changes})


def one_way(nodes: tuple[Any, ...], groups: tuple[tuple[str, ...], ...], node_type: type) -> tuple[Any, ...]:
    given = {node.name.value for node in nodes if not isinstance(node.value, graphql.NullValueNode)}
    chosen = next((group for group in groups if given.intersection(group)), groups[0])
    # The dictionaries fill in explicit nulls too: drop the other groups' nulls as well.
    kept = tuple(
        node
        for node in nodes
        if node.name.value in chosen or all(node.name.value not in group for group in groups)
    )
    if given.intersection(chosen):
        return kept
    placeholder = graphql.StringValueNode(value=PLACEHOLDER_ID)
    name = graphql.NameNode(value=chosen[0])
    return (*(node for node in kept if node.name.value != chosen[0]), node_type(name=name, value=placeholder))


class OneWayToACard(graphql.Visitor):
    def __init__(self, label: str) -> None:
        super().__init__()
        self.root_field = label.partition(".")[2]
        self.holder, self.groups = ONE_WAY_TO_A_CARD[label]

    def leave_field(self, node: graphql.FieldNode, *_: Any) -> Any:
        if self.holder is None and node.name.value == self.root_field:
            return replaced(node, arguments=one_way(node.arguments or (), self.groups, graphql.ArgumentNode))
        return None

    def leave_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
        if node.name.value == self.holder and isinstance(node.value, graphql.ObjectValueNode):
            fields = one_way(node.value.fields, self.groups, graphql.ObjectFieldNode)
            return replaced(node, value=replaced(node.value, fields=fields))
        return None


def one_way_to_a_card(context: Any, body: graphql.DocumentNode) -> graphql.DocumentNode:
    label = context.operation.label
    return graphql.visit(body, OneWayToACard(label)) if label in ONE_WAY_TO_A_CARD else body


# A random idempotencyKey is rarely a valid one, and a dictionary of keys would mostly answer CONFLICT
# (same key, other input). So each string key becomes a digest of the document it is in, as a client
# would derive it: a document drawn twice replays. Keys of an impossible length (the "keys"
# dictionary's) are sent as drawn.
def rekeyed(document: str) -> str:
    key = "fuzz-" + hashlib.sha256(document.encode()).hexdigest()[:24]

    class Rekey(graphql.Visitor):
        def leave_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
            value = node.value
            if (
                node.name.value == "idempotencyKey"
                and isinstance(value, graphql.StringValueNode)
                and 0 < len(value.value) <= MAX_KEY_LENGTH
            ):
                return replaced(node, value=graphql.StringValueNode(value=key))
            return None

    try:
        return graphql.print_ast(graphql.visit(graphql.parse(document), Rekey()))
    except graphql.GraphQLError:  # not a document at all: sent as it is
        return document


# Mutations that can take cards out of use (an expiry in the past, a block) run last, so that the
# transactions before them find usable cards; queries run after the other mutations, so that they
# read what those wrote.
LAST = (
    "Mutation.giftcardEdit",
    "Mutation.giftcardBlock",
    "Mutation.giftcardUnblock",
    "Mutation.giftcardDeactivate",
)


def running_order(label: str) -> tuple[int, int]:
    return (label in LAST, LAST.index(label) if label in LAST else label.startswith("Query."))


def code_of(error: Any) -> Any:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    return extensions.get("code") if isinstance(extensions, dict) else None


def strings_in(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON value, keys included: the text as a client reads it."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def problems_in(status: int, text: str) -> list[str]:
    """What is wrong with one answer: nothing for a sane one, whatever it says about the request."""
    problems = [f"status {status}"] if status >= 500 else []
    try:
        body = json.loads(text)
    except ValueError:
        body = None
        problems.append("body is not JSON")
    errors = body.get("errors") if isinstance(body, dict) else None
    if body is not None and (not isinstance(body, dict) or not isinstance(errors, list | None)):
        problems.append("body is not a GraphQL response")
    elif any(code_of(error) == "INTERNAL" for error in errors or []):
        problems.append("error code INTERNAL")
    # JSON escapes quotes and may escape any character: look at the decoded strings too.
    readable = "\n".join([text, *strings_in(body)]).lower()
    return problems + [f"body contains {needle!r}" for needle in INTERNAL_TEXT if needle.lower() in readable]


def outcome_of(text: str) -> str:
    """``data``, or the first error's code: what the run got through to, for its summary."""
    try:
        errors = json.loads(text).get("errors") or []
    except (ValueError, AttributeError):
        return "?"
    return str(code_of(errors[0])) if errors else "data"


class Run:
    """Sends each generated case with the token; counts the requests and keeps what went wrong."""

    def __init__(self, url: str, session: requests.Session) -> None:
        self.url, self.session = url, session
        self.sent: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.failures: dict[tuple[str, str], list[str]] = {}

    def send(self, case: Any) -> None:
        label = case.operation.label
        self.sent[label] += 1
        case.body = rekeyed(case.body)
        try:
            response = case.call(base_url=self.url, session=self.session, timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            self._fail(label, f"no answer ({type(exc).__name__})", case.body)
            return
        text = response.content.decode("utf-8", "replace")
        self.outcomes[outcome_of(text)] += 1
        problems = problems_in(response.status_code, text)
        if problems:
            self._fail(label, ", ".join(problems), f"{case.body}\n    -> {response.status_code} {text[:500]}")

    def _fail(self, label: str, problem: str, detail: str) -> None:
        self.failures.setdefault((label, problem), []).append(detail)

    def report(self) -> str:
        lines = []
        for (label, problem), details in sorted(self.failures.items()):
            lines.append(f"{label}: {problem} ({len(details)}x), e.g.")
            lines += [f"  {detail}" for detail in details[:SHOWN_PER_PROBLEM]]
        return "\n".join(lines)


def fuzz(cases: Any, examples: int, send: Callable[[Any], None]) -> None:
    """Draw up to ``examples`` cases and send each; no shrinking, nothing stored between runs."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=cases)
    def each(case: Any) -> None:
        send(case)

    each()


@pytest.mark.server
def test_generated_requests_get_no_server_error_and_no_internal_text(database_url: str, tmp_path: Path):
    # given the real server on a migrated database holding the demo cards, and an admin token
    env = {**server_env(database_url, tmp_path), "GIFTCARDS_INTROSPECTION": "true"}
    giftcards(env, "db", "upgrade")
    giftcards(env, "demo-data")
    token = mint(env, "fuzzer", "admin")
    log_path = tmp_path / "server.log"
    register_time_scalars()
    with running_server(env, log_path) as server:
        endpoint = f"{server.url}/graphql"
        schema = schemathesis.graphql.from_url(
            endpoint,
            config=fuzz_config(),
            timeout=REQUEST_TIMEOUT,
            headers={"Authorization": f"Bearer {token}"},
        )
        schema.hook("map_body")(one_way_to_a_card)
        operations = sorted(
            (cast(Any, result).ok() for result in schema.get_all_operations()),
            key=lambda operation: running_order(operation.label),
        )
        assert {operation.label.partition(".")[0] for operation in operations} == {"Query", "Mutation"}

        # when Schemathesis sends valid and schema-breaking documents for every query and mutation
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            run = Run(endpoint, session)
            started = time.monotonic()
            for operation in operations:
                for mode, examples in EXAMPLES.items():
                    fuzz(operation.as_strategy(generation_mode=mode), examples, run.send)
            elapsed = time.monotonic() - started

    # then there were enough of them, every field had its share, and no answer was a server error,
    # an INTERNAL error or showed internal detail
    total = sum(run.sent.values())
    print(f"fuzz: {total} requests in {elapsed:.0f}s, outcomes {dict(run.outcomes)}")
    assert run.failures == {}, f"{run.report()}\n--- server log ---\n{log_path.read_text()[-8000:]}"
    assert total >= MIN_REQUESTS, dict(run.sent)
    share = EXAMPLES[GenerationMode.POSITIVE] // 2
    # A field without arguments has only so many documents (its selections): it is not held to a share.
    sent = {
        operation.label: run.sent[operation.label]
        for operation in operations
        if operation.definition.raw.args
    }
    assert all(count >= share for count in sent.values()), sent
    assert all(run.sent[operation.label] > 0 for operation in operations), dict(run.sent)
