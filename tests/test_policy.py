"""permissions.yaml: loading, validation errors with file and line, and policy decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.auth.throttle import parse_limits
from app.enums import CodeType
from app.errors import ConfigurationError, ForbiddenError, UnauthenticatedError
from app.policy import ANONYMOUS, Budget, Permission, Principal, Visibility
from app.policy_file import load_policy
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
    text = POLICY_TEXT.replace(
        "    unmask: ViewUnmaskedGiftCardCodes\n  SHORT", "    unmask: ViewEverything\n  SHORT"
    )
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
        (
            "  SHORT_PERSONAL:\n    use: UseShortPersonalGiftCardCodes\n"
            "    unmask: ViewUnmaskedGiftCardCodes\n",
            "",
            "no rule for code type",
        ),
        ("  PHYSICAL:\n    use:", "  PLASTIC:\n    use:", "PLASTIC"),
        (
            "  CreateGiftCard:\n    description: Create gift cards.\n    trust: high\n",
            "",
            "lacks CreateGiftCard",
        ),
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
    assert granted == {
        "ListGiftCards",
        "FindGiftCardByCode",
        "UsePhysicalGiftCardCodes",
        "UseCryptoGiftCardCodes",
    }


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


# --- code attempt budgets per role ------------------------------------------------------------------


DEFAULT = Budget(per_subject=parse_limits("30/minute", "X"), per_address=parse_limits("30/minute", "X"))


def _limits(items) -> list[str]:
    return [str(item) for item in items]


def test_the_shipped_budgets_hold_an_address_to_a_few_guesses_and_let_tills_work():
    policy = load_policy(ROOT / "permissions.yaml")
    storefront, pos = policy.budgets["storefront"], policy.budgets["pos"]
    assert _limits(storefront.per_address) == ["5 per 1 minute", "3 per 10 second"]
    assert _limits(storefront.per_subject) == ["600 per 1 minute", "200 per 10 second"]
    assert _limits(pos.per_address) == _limits(pos.per_subject) == ["1200 per 1 minute", "400 per 10 second"]
    assert set(policy.budgets) == {"storefront", "pos", "ecommerce"}  # trusted roles list cards instead


def test_a_token_with_several_roles_gets_the_largest_budget_of_each_kind(tmp_path):
    text = POLICY_TEXT.replace(
        "budget: {per_subject: 600/minute;200/10 seconds, per_address: 5/minute;3/10 seconds}",
        "budget: {per_subject: 30/second, per_address: 5000/minute}",
    )
    policy = load_policy(_write(tmp_path, text))
    both = policy.budget(["pos", "storefront", "admin"], DEFAULT)
    assert both is not None
    # subject: 30/second sustains more than 1200/minute (20/second); address: 5000/minute more
    assert _limits(both.per_subject) == ["30 per 1 second"]
    assert _limits(both.per_address) == ["5000 per 1 minute"]
    # a role without a budget counts as the default; a token without known roles gets None (the default)
    assert policy.budget(["admin"], DEFAULT) == DEFAULT
    assert policy.budget([], DEFAULT) is None and policy.budget(["no-such-role"], DEFAULT) is None


def test_a_role_without_a_budget_counts_as_the_default_in_the_choice():
    policy = load_policy(ROOT / "permissions.yaml")
    roomy = Budget(per_subject=parse_limits("10000/minute", "X"), per_address=parse_limits("100/minute", "X"))
    chosen = policy.budget(["storefront", "admin"], roomy)
    assert chosen is not None
    assert _limits(chosen.per_subject) == ["10000 per 1 minute"]  # the default's, larger
    assert _limits(chosen.per_address) == ["100 per 1 minute"]


def test_equal_rates_are_told_apart_by_the_larger_burst(tmp_path):
    text = POLICY_TEXT.replace(
        "budget: {per_subject: 600/minute;200/10 seconds, per_address: 5/minute;3/10 seconds}",
        "budget: {per_subject: 60/minute;1/second, per_address: 60/minute}",
    ).replace(
        "    # a store's tills behind one address, dozens of requests at once, the odd mistyped code\n"
        "    budget: {per_subject: 1200/minute;400/10 seconds, per_address: 1200/minute;400/10 seconds}",
        "    budget: {per_subject: 1/second, per_address: 1/second}",
    )
    policy = load_policy(_write(tmp_path, text))
    chosen = policy.budget(["pos", "storefront"], DEFAULT)
    assert chosen is not None
    assert _limits(chosen.per_subject) == ["60 per 1 minute", "1 per 1 second"]
    assert _limits(chosen.per_address) == ["60 per 1 minute"]


@pytest.mark.parametrize(
    ("budget", "named"),
    [
        (
            "{per_subject: lots, per_address: 5/minute}",
            "roles.storefront.budget.per_subject: expected limits",
        ),
        (
            "{per_subject: 5/minute, per_address: 5/fortnight}",
            "roles.storefront.budget.per_address: expected limits",
        ),
        ("{per_subject: 5/minute}", "roles.storefront.budget.per_address: Field required"),
        (
            "{per_subject: 5/minute, per_address: 5/minute, per_client: 1/minute}",
            "roles.storefront.budget.per_client: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_budget_names_its_line_and_key(tmp_path, budget, named):
    text = POLICY_TEXT.replace(
        "budget: {per_subject: 600/minute;200/10 seconds, per_address: 5/minute;3/10 seconds}",
        f"budget: {budget}",
    )
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}:{_line_of(text, 'budget: ' + budget)}: {named}")
