"""schema.graphql is generated (scripts/export-schema) and must match the code."""

from __future__ import annotations

from app.graphql.schema import build_schema
from tests.conftest import ROOT


def test_checked_in_schema_is_current():
    expected = build_schema().as_str() + "\n"
    actual = (ROOT / "schema.graphql").read_text()
    assert actual == expected, "schema.graphql is stale: run scripts/export-schema"
