"""The attack drill (`scripts/attack`) against the real server, both sides from one run: honest
POS and storefront traffic served with no refusal, and a leaked storefront token's 1,000 random
guesses per scenario resolving no more than the storefront role's budget allows."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.server


def test_honest_traffic_is_served_and_guesses_stay_within_the_budget():
    drill = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "attack_codes.py"),
            "--json",
            "--seconds",
            "4",
            "--cards",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT / "scripts",
    )
    assert drill.returncode in (0, 1), drill.stderr
    result = json.loads(drill.stdout)
    honest = {outcome["scenario"]: outcome for outcome in result["honest"]}
    guesses = {outcome["scenario"]: outcome for outcome in result["guesses"]}
    assert set(honest) == {"pos", "storefront"}
    assert set(guesses) == {
        "single",
        "aliases-50",
        "aliases-15",
        "workers-redis",
        "addresses-50",
        "workers-memory",
    }
    for outcome in honest.values():
        assert outcome["served"] > 0, outcome
        assert outcome["rate_limited"] == 0 and outcome["other_errors"] == 0, outcome
    # the POS's mistyped codes were answered as the misses they are, not refused for budget
    assert honest["pos"]["typos_refused"] == honest["pos"]["typos"]
    assert honest["storefront"]["addresses"] == 500
    for name in ("single", "aliases-15", "workers-redis", "addresses-50"):
        outcome = guesses[name]
        assert outcome["guesses"] >= 1000
        assert 0 < outcome["looked_up"] <= outcome["allowed"], outcome
        assert outcome["other_errors"] == 0 and outcome["trusted_resolved"] == 100, outcome
    # one address: the storefront role's few guesses; 50 addresses: at most 50 times as many
    assert guesses["single"]["allowed"] <= 5
    assert guesses["addresses-50"]["allowed"] <= 50 * 5
    # 50 aliases are over the alias limit: every document is refused before it runs
    assert guesses["aliases-50"]["looked_up"] == 0 and guesses["aliases-50"]["refused_documents"] == 20
    # without Redis each worker counts alone: at most the budget per worker
    memory = guesses["workers-memory"]
    assert memory["looked_up"] <= 2 * memory["allowed"] and memory["trusted_resolved"] == 100
    assert drill.returncode == 0, drill.stdout
