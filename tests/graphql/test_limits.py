"""Measuring documents for their limits: every spread counted, each fragment measured once."""

from __future__ import annotations

import time

import pytest
from graphql import (
    FragmentDefinitionNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_introspection_query,
    parse,
    specified_rules,
    validate,
)

from app.graphql import limits
from app.graphql.limits import (
    CEILING,
    DocumentLimitError,
    DocumentLimits,
    Measure,
    check_document,
    limits_rule,
    measure,
    measure_fragments,
)
from app.graphql.schema import build_schema
from tests.test_slow_documents import DEEPEST, TRIES, nested


def _operation_and_fragments(document: str) -> tuple[SelectionSetNode, dict[str, Measure]]:
    ast = parse(document)
    fragments = {d.name.value: d for d in ast.definitions if isinstance(d, FragmentDefinitionNode)}
    operation = next(d for d in ast.definitions if isinstance(d, OperationDefinitionNode))
    return operation.selection_set, measure_fragments(fragments)


def operation_measure(document: str) -> Measure:
    return measure(*_operation_and_fragments(document))


def test_the_deepest_nesting_is_the_one_the_token_limit_allows():
    parse(nested(DEEPEST), max_tokens=2000)
    with pytest.raises(Exception, match="more than 2000 tokens"):
        parse(nested(DEEPEST + 1), max_tokens=2000)


def test_every_spread_counts_and_each_fragment_is_measured_once():
    # given aliases and depth in a fragment reached through four levels of double spreads
    document = nested(5, leaf="x: giftcards { edges { cursor } }")

    # when it is measured, then each of the 16 copies counts, but depth does not add up
    assert operation_measure(document) == Measure(depth=2, aliases=16, fields=16 * 3)


def test_counts_of_the_deepest_nesting_stop_at_the_ceiling_measuring_each_fragment_once(monkeypatch):
    # given a count of the selection sets measured, which gives up long before 2**DEEPEST of them
    measured = []

    def counted(selection_set, fragments):
        measured.append(selection_set)
        assert len(measured) <= 10 * DEEPEST, "selection sets measured again for each spread"
        return measure(selection_set, fragments)

    monkeypatch.setattr(limits, "measure", counted)

    # when the deepest nesting the token limit allows is measured
    found = limits.measure(*_operation_and_fragments(nested(DEEPEST, leaf="a: __typename")))

    # then the counts stop at the ceiling, and each fragment and the operation were measured once
    assert found == Measure(depth=0, aliases=CEILING, fields=CEILING)
    assert len(measured) == DEEPEST + 1
    assert len({id(selection_set) for selection_set in measured}) == DEEPEST + 1


def test_cycles_and_unknown_fragments_count_nothing():
    document = "{ ...A ...Missing } fragment A on Query { a: __typename ...B } fragment B on Query { ...A }"
    assert operation_measure(document) == Measure(depth=0, aliases=1, fields=1)


def test_a_chain_of_fragments_longer_than_the_recursion_limit_is_measured():
    chain = " ".join(f"fragment C{n} on Query {{ ...C{n + 1} }}" for n in range(5000))
    found = operation_measure("{ ...C0 } " + chain + " fragment C5000 on Query { __typename }")
    assert found == Measure(depth=0, aliases=0, fields=1)


def test_introspection_fields_add_no_depth_but_count_as_fields():
    found = operation_measure("{ __schema { types { fields { type { ofType { name } } } } } }")
    assert found == Measure(depth=0, aliases=0, fields=6)


def test_graphiqls_introspection_query_fits_the_default_field_cap():
    # GraphiQL asks with descriptions and, depending on its version, the optional parts as well.
    everything = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
        one_of=True,
        experimental_directive_deprecation=True,
    )
    assert operation_measure(get_introspection_query()).fields == 220
    assert operation_measure(everything).fields == 232 < DocumentLimits().max_fields


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (DocumentLimits(max_depth=1), "The operation exceeds maximum operation depth of 1."),
        (DocumentLimits(max_aliases=15), "The document has 16 aliases; at most 15 are allowed."),
        (
            DocumentLimits(max_aliases=16, max_fields=47),
            "The operation selects more than 47 fields once its fragments are expanded.",
        ),
    ],
)
def test_the_first_limit_passed_is_raised_naming_only_the_limit(limits, message):
    document = parse(nested(5, leaf="x: giftcards { edges { cursor } }"))
    with pytest.raises(DocumentLimitError) as raised:
        check_document(document, limits)
    assert raised.value.message == message
    check_document(document, DocumentLimits(max_depth=2, max_aliases=16, max_fields=48))


def test_astronomical_counts_are_reported_without_their_digits():
    with pytest.raises(DocumentLimitError, match=r"^The document has 1,000,000,000 or more aliases"):
        check_document(parse(nested(DEEPEST, leaf="a: __typename")), DocumentLimits())


@pytest.mark.parametrize("levels", [10, 11, 16, 18, 20, 22, DEEPEST])
@pytest.mark.timing
def test_nested_fragments_validate_in_milliseconds(levels):
    # given the schema's validation rules and ours, then each level is refused or passes at once
    schema = build_schema()._schema
    rules = (*specified_rules, limits_rule(DocumentLimits()))
    document = parse(nested(levels), max_tokens=2000)
    timings = []
    for _ in range(TRIES):  # the fastest is compared with the bound: a busy machine, or a collection
        started = time.perf_counter()  # of the test process's garbage, only adds time
        errors = validate(schema, document, rules)
        timings.append(time.perf_counter() - started)
    elapsed = min(timings)
    print(f"{levels} levels: validated in {elapsed * 1000:.1f} ms (fastest of {TRIES})")
    assert [error.message for error in errors] == (
        []
        if 2 ** (levels - 1) <= 1000
        else ["The operation selects more than 1000 fields once its fragments are expanded."]
    )
    assert elapsed < 0.5
