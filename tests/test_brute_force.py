"""The brute-force drill (`scripts/attack`) against the real server: a leaked storefront token
guesses 1,000 random codes as single requests, as 50- and 15-alias documents, and over 2 workers
sharing Redis counters; no more lookups run than the limits allow, and a trusted token is unaffected.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.server


def test_a_leaked_storefront_token_resolves_no_more_than_the_limits_allow():
    drill = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "attack_codes.py"), "--json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert drill.returncode in (0, 1), drill.stderr
    outcomes = {outcome["scenario"]: outcome for outcome in json.loads(drill.stdout)}
    assert set(outcomes) == {"single", "aliases-50", "aliases-15", "workers-redis", "workers-memory"}
    for name in ("single", "aliases-15", "workers-redis"):
        outcome = outcomes[name]
        assert outcome["guesses"] >= 1000
        assert 0 < outcome["looked_up"] <= outcome["allowed"] <= 30, outcome
        assert outcome["other_errors"] == 0 and outcome["trusted_resolved"] == 100, outcome
    # 50 aliases are over the alias limit: every document is refused before it runs
    assert outcomes["aliases-50"]["looked_up"] == 0
    assert outcomes["aliases-50"]["refused_documents"] == 20
    # without Redis each worker counts alone: at most the limit per worker
    memory = outcomes["workers-memory"]
    assert memory["looked_up"] <= 2 * memory["allowed"] and memory["trusted_resolved"] == 100
    assert drill.returncode == 0, drill.stdout
