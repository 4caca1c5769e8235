"""GET /giftcards/{id}/certificate: the code read back from the QR code and the Code 128 barcode of
each format (zbarimg; a PDF rendered by pdftoppm first), which code is printed for whom, refusals in
JSON, no caching, one audit event per certificate and none per refusal. SQLite: the database plays
no part here that tests/test_certificates_e2e.py does not cover on both."""

from __future__ import annotations

import logging
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from starlette.testclient import TestClient

from app import certificate_route
from app.enums import CodeType
from app.http import create_app
from app.logs import request_log
from app.models import AuditEvent
from tests.conftest import add_store

PRINT = "PrintGiftCardCertificate"
PHYSICAL_USE = "UsePhysicalGiftCardCodes"
PERSONAL_USE = "UseCryptoGiftCardCodes"
UNMASKED = "ViewUnmaskedGiftCardCodes"
PHYSICAL_CODE = "GC49288330"
PERSONAL_CODE = "PX7H4K9Q2M8R5T3W6Y1Z"
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "pdf": "application/pdf"}
MAGIC = {"png": b"\x89PNG\r\n", "jpeg": b"\xff\xd8\xff", "pdf": b"%PDF-"}


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "giftcards.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def decoded(body: bytes, file_format: str, tmp_path: Path) -> list[str]:
    """The symbols zbarimg reads on the certificate, as ``TYPE:data``, sorted."""
    image = tmp_path / f"certificate.{file_format}"
    image.write_bytes(body)
    if file_format == "pdf":
        subprocess.run(["pdftoppm", "-r", "150", "-png", "-singlefile", image, tmp_path / "page"], check=True)
        image = tmp_path / "page.png"
    found = subprocess.run(["zbarimg", "-q", image], capture_output=True, text=True, check=False)
    return sorted(found.stdout.splitlines())


def certificate(client: TestClient, card_id: int | str, token: str | None, query: str = "", **headers: str):
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.get(f"/giftcards/{card_id}/certificate{query}", headers=headers)


def refusal(response, status: int, code: str) -> str:
    """The refusal's message, once its status, JSON error shape and headers are checked."""
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == code
    return str(error["message"])


def audit_rows(services) -> list[tuple]:
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    with services.engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).mappings().all()
    return [(row["action"], row["outcome"], row["subject"], row["giftcard_id"], row["field"]) for row in rows]


@pytest.fixture
def printer(mint):
    """A back office token that may print PHYSICAL codes."""
    return mint(permissions=[PRINT, PHYSICAL_USE], sub="printer")


@pytest.fixture
def physical(seed) -> int:
    return seed({CodeType.PHYSICAL: PHYSICAL_CODE}, balance=5000)


@pytest.mark.parametrize("file_format", ["png", "jpeg", "pdf"])
@pytest.mark.parametrize("chosen_by", ["accept", "query"])
def test_each_format_carries_the_code_as_qr_and_code128(
    client, printer, physical, services, tmp_path, file_format, chosen_by
):
    if chosen_by == "accept":
        response = certificate(
            client, physical, printer, Accept=f"text/html;q=0.5, {MEDIA_TYPES[file_format]}"
        )
    else:
        response = certificate(client, physical, printer, f"?format={file_format}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MEDIA_TYPES[file_format]
    assert response.headers["cache-control"] == "no-store"
    assert response.content.startswith(MAGIC[file_format])
    if chosen_by == "accept":  # the same drawing as by the query: decoded once
        return
    symbols = decoded(response.content, file_format, tmp_path)
    if file_format == "jpeg":  # lossy: the QR code must read; the barcode reads too so far
        assert f"QR-Code:{PHYSICAL_CODE}" in symbols
    else:
        assert symbols == [f"CODE-128:{PHYSICAL_CODE}", f"QR-Code:{PHYSICAL_CODE}"]
    assert audit_rows(services) == [("CODE_DISCLOSED", "OK", "printer", physical, "PHYSICAL")]


def test_png_without_accept_and_the_query_over_accept(client, printer, physical):
    assert certificate(client, physical, printer).headers["content-type"] == "image/png"
    assert certificate(client, physical, printer, Accept="*/*").headers["content-type"] == "image/png"
    chosen = certificate(client, physical, printer, "?format=pdf", Accept="image/png")
    assert (chosen.status_code, chosen.headers["content-type"]) == (200, "application/pdf")
    assert chosen.content.startswith(b"%PDF-")
    jpeg = certificate(client, physical, printer, Accept="image/png;q=0.4, image/jpeg;q=0.9")
    assert jpeg.headers["content-type"] == "image/jpeg"


def test_refusals_are_json_uncached_and_leave_no_audit_event(client, mint, printer, physical, services):
    message = refusal(
        certificate(client, physical, printer, Accept="application/json"), 406, "BAD_USER_INPUT"
    )
    assert "image/png" in message and "application/pdf" in message
    for query in ("?format=gif", "?format=PNG", "?format=png&format=pdf", "?format="):
        response = certificate(client, physical, printer, query)
        assert "format" in refusal(response, 400, "BAD_USER_INPUT")
        assert response.json()["errors"][0]["extensions"]["field"] == "format"
    anonymous = certificate(client, physical, None)
    refusal(anonymous, 401, "UNAUTHENTICATED")
    assert anonymous.headers["www-authenticate"] == "Bearer"
    refusal(certificate(client, physical, "not-a-token"), 401, "UNAUTHENTICATED")
    without_print = mint(permissions=[PHYSICAL_USE, PERSONAL_USE, UNMASKED, "ListGiftCards"])
    assert PRINT in refusal(certificate(client, physical, without_print), 403, "FORBIDDEN")
    without_use = mint(permissions=[PRINT, PERSONAL_USE, UNMASKED])
    assert PHYSICAL_USE in refusal(certificate(client, physical, without_use), 403, "FORBIDDEN")
    for malformed in ("abc", "0", "-1", "99999999999999999999"):
        response = certificate(client, malformed, printer)
        assert refusal(response, 400, "BAD_USER_INPUT").startswith("id: ")
        assert response.json()["errors"][0]["extensions"]["field"] == "id"
    assert audit_rows(services) == []


@pytest.mark.settings(max_body_bytes=64)
def test_the_routes_other_refusals_are_uncached_too(client, printer, physical, services):
    assert "query string" in refusal(
        certificate(client, physical, printer, "?format=" + "p" * 80), 414, "BAD_USER_INPUT"
    )
    head = client.head(f"/giftcards/{physical}/certificate", headers={"Authorization": f"Bearer {printer}"})
    assert (head.status_code, head.headers["allow"], head.headers["cache-control"]) == (
        405,
        "GET",
        "no-store",
    )
    post = client.post(f"/giftcards/{physical}/certificate", headers={"Authorization": f"Bearer {printer}"})
    assert refusal(post, 405, "BAD_USER_INPUT") == "A certificate is fetched with GET."
    assert audit_rows(services) == []


def test_a_personal_code_is_printed_only_for_a_caller_who_sees_it_unmasked(
    client, mint, seed, services, tmp_path
):
    card = seed({CodeType.PERSONAL: PERSONAL_CODE}, balance=1200)
    masked = mint(permissions=[PRINT, PHYSICAL_USE, PERSONAL_USE], sub="masked")
    missing = refusal(certificate(client, card, masked), 404, "NOT_FOUND")
    assert missing == "id: the gift card has no code this token may print"
    no_use = mint(permissions=[PRINT, PHYSICAL_USE, UNMASKED])
    assert PERSONAL_USE in refusal(certificate(client, card, no_use), 403, "FORBIDDEN")
    assert audit_rows(services) == []
    unmasked = mint(permissions=[PRINT, PERSONAL_USE, UNMASKED], sub="unmasked")
    response = certificate(client, card, unmasked)
    assert response.status_code == 200, response.text
    assert decoded(response.content, "png", tmp_path) == [
        f"CODE-128:{PERSONAL_CODE}",
        f"QR-Code:{PERSONAL_CODE}",
    ]
    assert audit_rows(services) == [("CODE_DISCLOSED", "OK", "unmasked", card, "PERSONAL")]


def test_the_physical_code_comes_first_and_revoked_or_expired_ones_never(
    client, mint, seed, services, tmp_path
):
    everything = mint(permissions=[PRINT, PHYSICAL_USE, PERSONAL_USE, UNMASKED], sub="all")
    both = seed({CodeType.PHYSICAL: PHYSICAL_CODE, CodeType.PERSONAL: PERSONAL_CODE}, balance=100)
    revoked = seed(
        {CodeType.PHYSICAL: "GC11112222", CodeType.PERSONAL: "PR11112222333344445555"},
        revoked={CodeType.PHYSICAL},
    )
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    expired = seed({CodeType.PHYSICAL: "GC33334444"}, expires={CodeType.PHYSICAL: yesterday})
    physical_only = mint(permissions=[PRINT, PHYSICAL_USE, PERSONAL_USE])
    symbols = decoded(certificate(client, both, everything).content, "png", tmp_path)
    assert symbols == [f"CODE-128:{PHYSICAL_CODE}", f"QR-Code:{PHYSICAL_CODE}"]
    refusal(certificate(client, revoked, physical_only), 404, "NOT_FOUND")
    symbols = decoded(certificate(client, revoked, everything).content, "png", tmp_path)
    assert symbols == ["CODE-128:PR11112222333344445555", "QR-Code:PR11112222333344445555"]
    refusal(certificate(client, expired, everything), 404, "NOT_FOUND")
    assert audit_rows(services) == [
        ("CODE_DISCLOSED", "OK", "all", both, "PHYSICAL"),
        ("CODE_DISCLOSED", "OK", "all", revoked, "PERSONAL"),
    ]


def test_a_card_of_another_store_reads_as_missing(client, mint, seed, services, tmp_path):
    add_store(services, "north")
    north = seed({CodeType.PHYSICAL: "GC55556666"}, balance=700, store_id="north")
    deactivated = seed({CodeType.PHYSICAL: "GC77778888"}, balance=700)
    with services.engine.begin() as connection:
        connection.execute(
            text("UPDATE giftcards SET state = 'DEACTIVATED' WHERE id = :id"), {"id": deactivated}
        )
    default = mint(permissions=[PRINT, PHYSICAL_USE])
    foreign = refusal(certificate(client, north, default), 404, "NOT_FOUND")
    assert (
        foreign
        == refusal(certificate(client, north + 1, default), 404, "NOT_FOUND")
        == "id: no such gift card"
    )
    refusal(certificate(client, deactivated, default), 404, "NOT_FOUND")
    unknown = mint(permissions=[PRINT, PHYSICAL_USE], stores=["nowhere"])
    assert "nowhere" in refusal(certificate(client, north, unknown), 403, "FORBIDDEN")
    assert audit_rows(services) == []
    operator = mint(permissions=[PRINT, PHYSICAL_USE, "AllStores"], sub="operator")
    symbols = decoded(certificate(client, north, operator).content, "png", tmp_path)
    assert symbols == ["CODE-128:GC55556666", "QR-Code:GC55556666"]
    rows = audit_rows(services)
    assert rows == [("CODE_DISCLOSED", "OK", "operator", north, "PHYSICAL")]


def test_the_request_line_names_the_id_never_the_code(settings, services, printer, physical, caplog):
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(settings, services, sinks=[request_log(settings)])) as logged:
        response = certificate(logged, physical, printer, "?format=pdf", **{"X-Request-ID": "req-cert"})
    assert response.status_code == 200 and response.headers["x-request-id"] == "req-cert"
    [line] = [record.getMessage() for record in caplog.records if record.name == "app.requests"]
    assert line.startswith(f"GET /giftcards/{physical}/certificate 200 OK ")
    assert "request_id=req-cert subject=printer" in line
    assert not [record for record in caplog.records if PHYSICAL_CODE in record.getMessage()]
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    with services.engine.connect() as connection:
        assert connection.execute(select(table.c.request_id)).scalars().all() == ["req-cert"]


def test_drawing_runs_in_a_worker_thread_of_its_own_few(client, printer, physical, monkeypatch):
    ran: list[object] = []
    limits: list[float] = []
    original = certificate_route.run_sync

    async def recorded(function, *args, limiter=None):
        ran.append(function)
        limits.append(limiter.total_tokens if limiter is not None else 0)
        return await original(function, *args, limiter=limiter)

    monkeypatch.setattr(certificate_route, "run_sync", recorded)
    for _ in range(2):
        assert certificate(client, physical, printer).status_code == 200
    assert [getattr(function, "__name__", None) for function in ran] == ["print", "print"]
    # certificates wait for each other, not for the worker threads /graphql runs its resolvers in
    assert limits == [certificate_route.CONCURRENT_DRAWINGS] * 2
    assert certificate_route.CONCURRENT_DRAWINGS == 2


def test_what_the_certificate_shows(services, mint, seed):
    card = seed(
        {CodeType.PHYSICAL: PHYSICAL_CODE},
        balance=4250,
        currency="EUR",
        expires={CodeType.PHYSICAL: date(2031, 5, 6)},
    )
    shown = []

    def keep(certificate) -> bytes:
        shown.append(certificate)
        return b"drawn"

    principal = services.tokens.principal_from_header(f"Bearer {mint(permissions=[PRINT, PHYSICAL_USE])}")
    assert services.certificates.print(principal, str(card), keep) == b"drawn"
    [certificate] = shown
    assert (certificate.card_id, certificate.code, certificate.code_type) == (
        card,
        PHYSICAL_CODE,
        CodeType.PHYSICAL,
    )
    assert (certificate.balance, certificate.currency) == ("42.50", "EUR")
    assert (certificate.expires_at, certificate.code_expires_on, certificate.program_name) == (
        None,
        date(2031, 5, 6),
        None,
    )
