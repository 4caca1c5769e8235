"""The REST seed's certificate, end to end on SQLite and PostgreSQL: a program's card issued with a
value and an expiry and no code (one is generated), then its certificate as a PDF, whose QR code and
barcode give the generated code back, with the value, expiry and program name it was drawn from and
one CODE_DISCLOSED event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.certificates import Format, draw
from app.domain.certificates import Certificate
from tests.conftest import gql
from tests.test_certificates import PRINT, audit_rows, decoded

PROGRAM_ADD = "mutation P($program: GiftCardProgramInput!) { giftcardProgramAdd(program: $program) { id } }"
CARD_ADD = """mutation A($card: GiftCardAddInput!) {
  giftcardAdd(giftcard: $card) { id codes { codeType code } } }"""


def test_a_programs_card_printed_as_a_pdf(client, mint, services, tmp_path, monkeypatch):
    office = mint(roles=["backoffice"], sub="office")
    program = {
        "code": "HOL",
        "name": "Holiday Card",
        "currency": "EUR",
        "codeFormat": {"prefix": "HC", "length": 16, "checkCharacter": True},
    }
    added = gql(client, PROGRAM_ADD, {"program": program}, token=mint(roles=["admin"]))
    assert "errors" not in added, added
    expires = (datetime.now(UTC) + timedelta(days=6 * 366)).replace(microsecond=0)
    card = {
        "programId": added["data"]["giftcardProgramAdd"]["id"],
        "initialValue": "25.00",
        "expiresAt": expires.isoformat(),
    }
    body = gql(client, CARD_ADD, {"card": card}, token=office)
    assert "errors" not in body, body
    issued = body["data"]["giftcardAdd"]
    [(code_type, code)] = [(item["codeType"], item["code"]) for item in issued["codes"]]
    shown: list[Certificate] = []

    def drawn(certificate: Certificate, file_format: Format) -> bytes:
        shown.append(certificate)
        return draw(certificate, file_format)

    monkeypatch.setattr("app.certificate_route.draw", drawn)
    response = client.get(
        f"/giftcards/{issued['id']}/certificate",
        headers={"Authorization": f"Bearer {office}", "Accept": "application/pdf"},
    )
    assert (response.status_code, response.headers["content-type"]) == (200, "application/pdf"), response.text
    assert response.headers["cache-control"] == "no-store"
    assert code_type == "PHYSICAL" and PRINT in services.policy.roles["backoffice"]
    assert decoded(response.content, "pdf", tmp_path) == [f"CODE-128:{code}", f"QR-Code:{code}"]
    [certificate] = shown
    assert (certificate.code, certificate.balance, certificate.currency) == (code, "25.00", "EUR")
    assert (certificate.program_name, certificate.expires_at) == ("Holiday Card", expires)
    assert audit_rows(services)[-1] == ("CODE_DISCLOSED", "OK", "office", int(issued["id"]), "PHYSICAL")
