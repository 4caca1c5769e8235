"""No plaintext code or PIN at rest or in the logs: grep the database and a real server's log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, gql

PIN = "908172635401"
ADD = """mutation Add($giftcard: GiftCardAddInput!) {
  giftcardAdd(giftcard: $giftcard) { id codes { codeType code } } }"""
LOOKUP = "query($c: String!) { giftcard(code: $c) { results { id codes { code } } } }"
AUTHORIZE = """mutation T($trans: GiftCardTransInput!, $key: String) {
  giftcardTransAdd(trans: $trans, idempotencyKey: $key) { authCode } }"""


def _secrets_of(codes: list[str]) -> list[bytes]:
    """What must never appear: each code without its (intentionally kept) last four, and the PIN."""
    needles = [PIN.encode()]
    for code in codes:
        head = code[:-4].encode()
        needles += [head, head.hex().encode(), head.lower()]
    return needles


def _database_bytes(database_url: str) -> bytes:
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    engine = create_engine(database_url)
    with engine.connect() as connection:
        dump = []
        for table in (
            "giftcards",
            "giftcard_codes",
            "giftcard_transactions",
            "idempotency_keys",
            "audit_events",
        ):
            dump += [row[0] for row in connection.execute(text(f"SELECT t::text FROM {table} t"))]
    engine.dispose()
    return "\n".join(dump).encode()


def test_database_holds_no_plaintext_code_or_pin(client, mint, database_url):
    # given cards created through the API with every kind of code and a PIN, each with an
    # authorization (whose authCode is a secret too; its answer kept under an idempotency key)
    token = mint(roles=["admin"])
    created = []
    for n in range(3):
        body = gql(
            client,
            ADD,
            {
                "giftcard": {
                    "physicalCode": f"PLAINPHYS{n}7731",
                    "physicalPin": PIN,
                    "externalCode": f"PLAINEXTN{n}8842",
                    "addPersonalCode": True,
                    "memberId": f"MEM{n}",
                }
            },
            token=token,
        )
        created += [code["code"] for code in body["data"]["giftcardAdd"]["codes"]]
        trans = {"transType": "ADD", "amount": "5.00", "authorizeOnly": True}
        trans["giftcardId"] = body["data"]["giftcardAdd"]["id"]
        authorized = gql(client, AUTHORIZE, {"trans": trans, "key": f"authorize-{n}"}, token=token)
        created.append(authorized["data"]["giftcardTransAdd"]["authCode"])
    assert len(created) == 12 and all(created)
    # when the whole database is read back as bytes
    dump = _database_bytes(database_url)
    # then no code (beyond its last four characters), authCode or PIN is in it
    assert dump  # the dump is real
    leaked = [needle for needle in _secrets_of(created) if needle in dump]
    assert leaked == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.server
def test_server_logs_hold_no_plaintext_code_or_pin(tmp_path):
    giftcards = str(Path(sys.executable).parent / "giftcards")
    env = {
        **os.environ,
        "GIFTCARDS_DATABASE_URL": f"sqlite:///{tmp_path}/g.db",
        "GIFTCARDS_STATE_DIR": str(tmp_path / "state"),
        "GIFTCARDS_LOG_LEVEL": "debug",
        "GIFTCARDS_PERMISSIONS_FILE": str(ROOT / "permissions.yaml"),
    }
    subprocess.run([giftcards, "db", "upgrade"], env=env, check=True, capture_output=True)
    token = subprocess.run(
        [giftcards, "token", "--sub", "ops", "--role", "admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = _free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [giftcards, "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        # given codes and a PIN sent in bodies, in GET query strings, and in failing requests
        created = httpx.post(
            f"{base}/graphql",
            headers=headers,
            json={
                "query": ADD,
                "variables": {
                    "giftcard": {
                        "physicalCode": "LOGPHYS55661234",
                        "physicalPin": PIN,
                        "addPersonalCode": True,
                        "memberId": "M1",
                    }
                },
            },
        ).json()
        codes = [c["code"] for c in created["data"]["giftcardAdd"]["codes"]]
        for code in codes:
            httpx.get(
                f"{base}/graphql",
                params={"query": LOOKUP, "variables": f'{{"c": "{code}"}}'},
                headers={**headers, "Accept": "application/json"},
            )
            httpx.post(f"{base}/graphql", headers=headers, json={"query": LOOKUP, "variables": {"c": code}})
        httpx.post(
            f"{base}/graphql",
            headers=headers,
            json={
                "query": ADD,
                "variables": {"giftcard": {"physicalCode": "LOGPHYS55661234", "physicalPin": PIN}},
            },
        )  # duplicate
        httpx.post(
            f"{base}/graphql",
            headers=headers,
            json={
                "query": ADD,
                "variables": {"giftcard": {"physicalCode": "BAD!LOGPHYS5566", "physicalPin": PIN}},
            },
        )  # malformed
        httpx.post(
            f"{base}/graphql",
            headers={"Authorization": "Bearer " + token[:-3] + "abc"},
            json={"query": LOOKUP, "variables": {"c": codes[0]}},
        )  # tampered token
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    # then the log shows the traffic but none of the secrets
    log_text = log_path.read_bytes()
    assert b"POST /graphql" in log_text and b"GET /graphql" in log_text
    leaked = [n for n in [*_secrets_of(codes), b"LOGPHYS5566", token.encode()] if n in log_text]
    assert leaked == []
