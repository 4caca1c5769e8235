"""Depth, alias and field limits on every GraphQL document, checked in time linear in its size: each
fragment is measured once and its measure reused at every spread, however often it is spread. The
work graphql-core's own field-merging rule may spend is bounded here too."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
)
from graphql.validation.rules import overlapping_fields_can_be_merged
from graphql.validation.validate import ValidationAbortedError

# How much work graphql-core may spend comparing fields that share a response name before it
# aborts the validation. Its default (500,000 units, a few µs each) lets one 2,000-token document
# of ~285 copies of `giftcards { pageInfo { hasNextPage } }` validate for 1-2 s. GraphiQL's
# introspection query and this API's own documents spend none; 100 copies of one field in one
# selection set spend 9,900.
MERGE_BUDGET = 10_000

# Counts stop growing here. Spreading each fragment twice doubles the count at every level, so
# within the token limit a count can reach 2**199; no limit is set anywhere near this.
CEILING = 1_000_000_000


@dataclass(frozen=True)
class DocumentLimits:
    """Caps on every document: tokens while parsing, the rest while validating."""

    max_depth: int = 8
    max_aliases: int = 15
    # Fields once fragments are expanded, each spread counted. GraphiQL's introspection query has
    # 220 (232 with every option graphql-core offers) and this API's documents a few dozen; 1,000
    # leaves room for both while no fragments can multiply a document's work much past its size.
    max_fields: int = 1000
    max_tokens: int = 2000


@dataclass(frozen=True)
class Measure:
    """What a selection set amounts to once its fragments are expanded."""

    depth: int = 0
    aliases: int = 0
    fields: int = 0


NOTHING = Measure()


class DocumentLimitError(ValidationAbortedError):
    """A document over a limit; the message names the limit only, so a client may see it. Raised rather
    than reported: graphql-core then stops validating at once, instead of running its other rules (some
    quadratic up to a budget) over a document already refused."""


def _spreads(selection_set: SelectionSetNode) -> Iterator[str]:
    """The names of the fragments spread anywhere in ``selection_set``."""
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif isinstance(selection, (FieldNode, InlineFragmentNode)) and selection.selection_set:
                pending.append(selection.selection_set)


def _selection(selection: SelectionNode, fragments: Mapping[str, Measure]) -> Measure:
    if isinstance(selection, FieldNode):
        inner = measure(selection.selection_set, fragments) if selection.selection_set else NOTHING
        # Introspection fields add no depth, as in Strawberry's depth limiter: GraphiQL's
        # introspection query is deeper than any limit worth setting.
        adds_depth = selection.selection_set is not None and not selection.name.value.startswith("__")
        return Measure(
            1 + inner.depth if adds_depth else 0,
            inner.aliases + (selection.alias is not None),
            inner.fields + 1,
        )
    if isinstance(selection, FragmentSpreadNode):
        return fragments.get(selection.name.value, NOTHING)
    if isinstance(selection, InlineFragmentNode):
        return measure(selection.selection_set, fragments)
    return NOTHING


def measure(selection_set: SelectionSetNode, fragments: Mapping[str, Measure]) -> Measure:
    """Measure a selection set, taking each spread's measure from ``fragments``; one missing there (an
    unknown fragment, or one closing a cycle) counts as nothing: other rules refuse those documents.
    Recursion follows the nesting the parser already bounds."""
    parts = [_selection(selection, fragments) for selection in selection_set.selections]
    return Measure(
        max((part.depth for part in parts), default=0),
        min(sum(part.aliases for part in parts), CEILING),
        min(sum(part.fields for part in parts), CEILING),
    )


def measure_fragments(fragments: Mapping[str, FragmentDefinitionNode]) -> dict[str, Measure]:
    """Every fragment's measure, each measured once, after the fragments it spreads. The spreads are
    walked with a stack of our own: a chain of fragments can be longer than the recursion limit. A
    spread back to a fragment on the current path closes a cycle."""
    spreads = {name: list(_spreads(fragment.selection_set)) for name, fragment in fragments.items()}
    measures: dict[str, Measure] = {}
    for root in fragments:
        if root in measures:
            continue
        path = [(root, iter(spreads[root]))]
        on_path = {root}
        while path:
            name, pending = path[-1]
            for spread in pending:
                if spread in fragments and spread not in measures and spread not in on_path:
                    path.append((spread, iter(spreads[spread])))
                    on_path.add(spread)
                    break
            else:
                path.pop()
                on_path.remove(name)
                measures[name] = measure(fragments[name].selection_set, measures)
    return measures


def check_document(document: DocumentNode, limits: DocumentLimits) -> None:
    """Raise :class:`DocumentLimitError` for the first operation over a limit."""
    fragments = [node for node in document.definitions if isinstance(node, FragmentDefinitionNode)]
    measures = measure_fragments({fragment.name.value: fragment for fragment in fragments})
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        found = measure(operation.selection_set, measures)
        if found.depth > limits.max_depth:
            message = f"The operation exceeds maximum operation depth of {limits.max_depth}."
        elif found.aliases > limits.max_aliases:
            aliases = str(found.aliases) if found.aliases < CEILING else f"{CEILING:,} or more"
            message = f"The document has {aliases} aliases; at most {limits.max_aliases} are allowed."
        elif found.fields > limits.max_fields:
            message = (
                f"The operation selects more than {limits.max_fields} fields once its fragments are expanded."
            )
        else:
            continue
        raise DocumentLimitError(message, operation)


def bound_field_merging() -> None:
    """Cap graphql-core's field-merging comparisons at :data:`MERGE_BUDGET` for this process (the
    documented way: graphql-core reads this module attribute whenever a validation starts)."""
    overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = MERGE_BUDGET


def limits_rule(limits: DocumentLimits) -> type[ASTValidationRule]:
    """A validation rule holding every document to ``limits``. Build it once per schema: the validation
    cache is keyed by the rule classes."""

    class DocumentLimitsRule(ASTValidationRule):
        def enter_document(self, node: DocumentNode, *_args: Any) -> None:
            check_document(node, limits)

    return DocumentLimitsRule
