"""A filter by code (the transaction history's, the card listing's): the code's lookup hashes and the
types it may be under, checked as `giftcard(code:, codeType:)` checks a lookup. The code itself goes
no further: a refusal never echoes it, and only its keyed hashes reach the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.codes import CodeVault, validate_code
from app.enums import CodeType
from app.policy import Policy, Principal


@dataclass(frozen=True)
class CodeFilter:
    lookup_hashes: tuple[bytes, ...]  # the code's, under every lookup key
    code_types: tuple[CodeType, ...]  # the types it is looked for under


def code_filter(
    vault: CodeVault, policy: Policy, principal: Principal, code: str, code_type: CodeType | None
) -> CodeFilter:
    """The checked filter: under ``code_type`` (its Use… permission needed), else under every type
    the caller may use (at least one)."""
    code_types = policy.searched_code_types(principal, code_type, field="code")
    return CodeFilter(vault.lookup_hashes(validate_code(code, "code")), code_types)
