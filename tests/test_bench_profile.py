"""The profile summary of `scripts/bench tx`: py-spy's raw stacks, own samples by module and function."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bench_profile  # the scripts import each other by module name

REPO = Path("/srv/giftcards")
SITE = "/srv/giftcards/.venv/lib/python3.11/site-packages"
RAW = f"""\
Thread._bootstrap (/usr/lib/python3.11/threading.py:1002);Ledger.create ({REPO}/app/domain/ledger.py:98);\
Connection.execute ({SITE}/sqlalchemy/engine/base.py:1494) 7
Thread._bootstrap (/usr/lib/python3.11/threading.py:1002);Ledger.create ({REPO}/app/domain/ledger.py:98) 2
Runner.run (/usr/lib/python3.11/asyncio/runners.py:118);execute ({SITE}/graphql/execution/execute.py:10) 3
Runner.run (/usr/lib/python3.11/asyncio/runners.py:118);Server.serve ({SITE}/uvicorn/server.py:70);\
Condition.wait (/usr/lib/python3.11/threading.py:320) 1
Runner.run (/usr/lib/python3.11/asyncio/runners.py:118);cursor ({SITE}/psycopg/cursor.py:1) 4
Runner.run (/usr/lib/python3.11/asyncio/runners.py:118);\
Connection.execute ({SITE}/sqlalchemy/engine/base.py:1494) 3
not a stack line
"""


def test_own_samples_go_to_the_leaf_frame_by_module():
    profile = bench_profile.summarise(RAW, REPO)
    assert profile.samples == 20
    assert profile.modules == {
        "sqlalchemy": 10,
        "psycopg": 4,
        "graphql-core": 3,
        "app.domain.ledger": 2,
        "stdlib:threading": 1,
    }
    assert profile.functions["sqlalchemy Connection.execute"] == 10
    assert profile.functions["app.domain.ledger Ledger.create"] == 2


def test_modules_are_named_by_package_app_module_or_stdlib():
    name = bench_profile.module_of
    assert name(f"{SITE}/strawberry/schema/execute.py", REPO) == "strawberry"
    assert name(f"{SITE}/six.py", REPO) == "six"
    assert name(f"{REPO}/app/store/__init__.py", REPO) == "app.store"
    assert name(f"{REPO}/app/http.py", REPO) == "app.http"
    assert name("/usr/lib/python3.11/asyncio/base_events.py", REPO) == "stdlib:asyncio"
    assert name("/usr/lib/python3.11/json/__init__.py", REPO) == "stdlib:json"
    assert name("<string>", REPO) == "<string>"


def test_the_summary_says_how_busy_and_ranks_by_share():
    lines = bench_profile.summarise(RAW, REPO).lines(seconds=1, top=2)
    assert lines[0].startswith(f"20 samples holding the GIL of {bench_profile.RATE} ")
    assert lines[1:3] == ["   50.0%  sqlalchemy", "   20.0%  psycopg"]
    assert lines[3] == "own time by function:"
    assert lines[4] == "   50.0%  sqlalchemy Connection.execute"
    assert len(lines) == 6
    assert bench_profile.summarise("", REPO).lines(seconds=1)[0].startswith("no samples")


def test_the_worker_of_a_server_without_children_is_the_server_itself() -> None:
    # `giftcards serve` on SQLite runs its one worker in its own process: that is the one to sample.
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert bench_profile.worker(server.pid) == server.pid
    finally:
        server.kill()
        server.wait()
    assert bench_profile.worker(server.pid) is None
