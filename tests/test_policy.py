"""permissions.yaml: loading, validation errors with file and line, and policy decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.enums import CodeType
from app.errors import ConfigurationError, ForbiddenError, UnauthenticatedError
from app.policy import ANONYMOUS, Permission, Principal, Visibility, load_policy
from tests.conftest import ROOT

POLICY_TEXT = (ROOT / "permissions.yaml").read_text()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "permissions.yaml"
    path.write_text(text)
    return path


def _line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


def test_shipped_policy_loads_with_every_role():
    policy = load_policy(ROOT / "permissions.yaml")
    assert set(policy.roles) == {"storefront", "pos", "ecommerce", "backoffice", "admin"}
    assert set(policy.catalogue) >= {p.value for p in Permission}
    assert policy.clients == {}


def test_unknown_permission_in_a_role_names_file_and_line(tmp_path):
    text = POLICY_TEXT.replace(
        "permissions: [FindGiftCardByCode, UsePhysicalGiftCardCodes, UseCryptoGiftCardCodes]",
        "permissions: [FindGiftCardByCode, UsePhysicalGiftCardCodez, UseCryptoGiftCardCodes]",
    )
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        load_policy(path)
    line = _line_of(text, "UsePhysicalGiftCardCodez")
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert "UsePhysicalGiftCardCodez" in str(caught.value)


def test_unknown_permission_in_code_type_rule(tmp_path):
    text = POLICY_TEXT.replace("    unmask: ViewUnmaskedGiftCardCodes\n  SHORT",
                               "    unmask: ViewEverything\n  SHORT")
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError, match=rf":{_line_of(text, 'ViewEverything')}: .*ViewEverything"):
        load_policy(path)


def test_unknown_role_of_a_client(tmp_path):
    text = POLICY_TEXT.replace(
        "clients: []",
        "clients:\n  - id: shop\n    secret_hash: x\n    roles: [storefront, cashier]",
    )
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError, match=rf":{_line_of(text, 'cashier')}: unknown role 'cashier'"):
        load_policy(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    trust: low\n  ListGiftCards:", "    trust: medium\n  ListGiftCards:", "trust"),
        ("  SHORT_PERSONAL:\n    use: UseShortPersonalGiftCardCodes\n    unmask: ViewUnmaskedGiftCardCodes\n",
         "", "no rule for code type"),
        ("  PHYSICAL:\n    use:", "  PLASTIC:\n    use:", "PLASTIC"),
        ("  CreateGiftCard:\n    description: Create gift cards.\n    trust: high\n", "",
         "lacks CreateGiftCard"),
        ("roles:", "rolez:", "rolez"),
    ],
    ids=["bad-trust", "missing-code-type", "unknown-code-type", "catalogue-incomplete", "unknown-key"],
)
def test_structural_errors(tmp_path, old, new, message):
    assert old in POLICY_TEXT
    path = _write(tmp_path, POLICY_TEXT.replace(old, new, 1))
    with pytest.raises(ConfigurationError, match=message):
        load_policy(path)


@pytest.mark.parametrize("text", ["", "permissions: [", "- just a list"])
def test_unreadable_documents(tmp_path, text):
    with pytest.raises(ConfigurationError, match=str(tmp_path)):
        load_policy(_write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")


def test_expand_roles_and_ignore_unknown_names():
    policy = load_policy(ROOT / "permissions.yaml")
    granted = policy.expand(["ListGiftCards", "MakeMeRich"], ["storefront", "nosuchrole"])
    assert granted == {"ListGiftCards", "FindGiftCardByCode", "UsePhysicalGiftCardCodes",
                       "UseCryptoGiftCardCodes"}


def test_visibility_follows_the_code_type_rules():
    policy = load_policy(ROOT / "permissions.yaml")
    storefront = Principal("shop", policy.expand([], ["storefront"]))
    assert policy.usable_code_types(storefront) == (CodeType.PHYSICAL, CodeType.PERSONAL)
    assert policy.visibility(storefront, CodeType.PHYSICAL) is Visibility.FULL
    assert policy.visibility(storefront, CodeType.PERSONAL) is Visibility.MASKED
    assert policy.visibility(storefront, CodeType.EXTERNAL) is Visibility.HIDDEN
    admin = Principal("root", policy.expand([], ["admin"]))
    assert all(policy.visibility(admin, t) is Visibility.FULL for t in CodeType)


def test_require_distinguishes_anonymous_from_forbidden():
    with pytest.raises(UnauthenticatedError):
        ANONYMOUS.require(Permission.LIST_GIFT_CARDS)
    with pytest.raises(ForbiddenError, match="ListGiftCards"):
        Principal("shop", frozenset({"FindGiftCardByCode"})).require(Permission.LIST_GIFT_CARDS)
    Principal("ops", frozenset({"ListGiftCards"})).require(Permission.LIST_GIFT_CARDS)
