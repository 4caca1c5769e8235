"""permissions.yaml edge cases: every refusal names the line at fault; clients load whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ConfigurationError, UnauthenticatedError
from app.policy import ANONYMOUS, Client, Permission
from app.policy_file import load_policy
from tests.conftest import ROOT

POLICY_TEXT = (ROOT / "permissions.yaml").read_text()
CLIENTS = """clients:
  - id: shop
    secret_hash: hash-one
    roles: [storefront, pos]
  - id: till
    secret_hash: hash-two
    roles: []
"""


def _refusal(tmp_path: Path, *changes: tuple[str, str]) -> tuple[str, str]:
    """(the text loaded after the changes, the message it was refused with)."""
    text = POLICY_TEXT
    for old, new in changes:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "permissions.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as refused:
        load_policy(path)
    message = str(refused.value)
    assert message.startswith(f"{path}:")
    return text, message.removeprefix(f"{path}:")


def _line(text: str, needle: str, after: str = "") -> int:
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if after in line) if after else 0
    return next(n for n, line in enumerate(lines[start:], start + 1) if needle in line)


def test_clients_load_with_their_id_secret_hash_and_roles(tmp_path):
    path = tmp_path / "permissions.yaml"
    path.write_text(POLICY_TEXT.replace("clients: []\n", CLIENTS))

    policy = load_policy(path)

    assert policy.clients == {
        "shop": Client("shop", "hash-one", ("storefront", "pos")),
        "till": Client("till", "hash-two", ()),
    }


def test_a_clients_stores_load_in_order_once_each(tmp_path):
    # given clients naming stores (one twice), none, and an empty list
    entries = CLIENTS.replace("roles: []\n", "roles: []\n    stores: []\n").replace(
        "roles: [storefront, pos]\n", "roles: [storefront, pos]\n    stores: [south, north, south]\n"
    )
    path = tmp_path / "permissions.yaml"
    path.write_text(
        POLICY_TEXT.replace("clients: []\n", entries + "  - {id: plain, secret_hash: h, roles: []}\n")
    )
    # when the file is loaded
    policy = load_policy(path)
    # then each client's stores are as written, without repeats; None where none are named
    assert policy.clients["shop"].stores == ("south", "north")
    assert policy.clients["till"].stores == ()
    assert policy.clients["plain"].stores is None


@pytest.mark.parametrize(
    ("stores", "needle", "expected"),
    [
        pytest.param(
            "[north, two words]", "stores:", "'two words' is not a store id: 1 to 64", id="malformed"
        ),
        pytest.param("[north, '']", "stores:", "'' is not a store id", id="empty-id"),
        pytest.param("north", "stores:", "clients.0.stores: Input should be a valid list", id="not-a-list"),
        pytest.param(
            "[north, 7]", "stores:", "clients.0.stores.1: Input should be a valid string", id="number"
        ),
        pytest.param(
            "[" + ", ".join(f"s{n}" for n in range(101)) + "]", "stores:", "at most 100 stores", id="too-many"
        ),
    ],
)
def test_a_bad_stores_entry_names_its_line(tmp_path, stores, needle, expected):
    entry = f"  - id: shop\n    secret_hash: h\n    roles: []\n    stores: {stores}\n"
    text, message = _refusal(tmp_path, ("clients: []\n", "clients:\n" + entry))

    assert message.startswith(f"{_line(text, needle, after='id: shop')}: ")
    assert expected in message


def test_a_duplicate_client_id_names_the_line_of_the_second_id(tmp_path):
    second = "  - secret_hash: hash-two\n    id: shop\n    roles: []\n"  # the id is not the item's first line
    text, message = _refusal(tmp_path, ("clients: []\n", CLIENTS.split("  - id: till")[0] + second))

    assert message == f"{_line(text, 'id: shop', after='hash-two')}: duplicate client id 'shop'"


def test_a_missing_field_names_its_path_and_the_line_of_its_parent(tmp_path):
    text, message = _refusal(
        tmp_path,
        ("    description: Create gift cards.\n    trust: high\n", "    description: Create gift cards.\n"),
    )

    assert message == f"{_line(text, 'CreateGiftCard:')}: permissions.CreateGiftCard.trust: Field required"


def test_a_permission_missing_from_the_catalogue_names_the_catalogue_line(tmp_path):
    # the catalogue is not the document's first key, so its line is not the document's
    catalogue = "permissions:\n  FindGiftCardByCode:"
    text, message = _refusal(
        tmp_path,
        ("clients: []\n", ""),
        (catalogue, "clients: []\n" + catalogue),
        ("  ViewAuditLog:\n", "  ViewAuditLogs:\n"),
    )

    line = _line(text, "permissions:")
    assert message == f"{line}: the catalogue lacks ViewAuditLog, which the server uses"


def test_an_unknown_use_permission_names_its_line(tmp_path):
    text, message = _refusal(
        tmp_path,
        (
            "  EXTERNAL:\n    use: UseExternalGiftCardCodes\n",
            "  EXTERNAL:\n    use: UseForeignGiftCardCodes\n",
        ),
    )

    line = _line(text, "use: UseForeignGiftCardCodes")
    assert message == f"{line}: unknown permission 'UseForeignGiftCardCodes'"


def test_code_types_without_a_rule_are_named_together_at_the_code_types_line(tmp_path):
    unmask = "    unmask: ViewUnmaskedGiftCardCodes\n"
    old = (
        f"  PERSONAL:\n    use: UseCryptoGiftCardCodes\n{unmask}"
        f"  SHORT_PERSONAL:\n    use: UseShortPersonalGiftCardCodes\n{unmask}"
    )
    text, message = _refusal(tmp_path, (old, ""))

    assert message == f"{_line(text, 'code_types:')}: no rule for code type(s) PERSONAL, SHORT_PERSONAL"


def test_an_anonymous_caller_is_told_a_token_is_required():
    with pytest.raises(UnauthenticatedError) as refused:
        ANONYMOUS.require(Permission.FIND_BY_CODE)
    assert refused.value.message == "a bearer token is required"
