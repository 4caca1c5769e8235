"""Each worker of ``giftcards serve`` on a CPU of its own (app.cpu_pinning)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import cpu_pinning
from app.cpu_pinning import SLOTS_VARIABLE, cpu_quota, cpu_slots, usable_cpus, why_not_pinned
from tests.test_concurrency import running_server, server_env

CPUS = usable_cpus()
needs_two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="pinning two workers needs two CPUs")
PINNED = re.compile(r"worker (\d+) pinned to CPU (\d+)")

# A worker that pins itself, says where, and holds its slot until its stdin closes.
HOLDER = """
import os, sys
from app.cpu_pinning import pin_worker
cpu = pin_worker(os.environ)
print(cpu, sorted(os.sched_getaffinity(0)), flush=True)
sys.stdin.read()
"""


def allowed_cpus(pid: int, thread: int | None = None) -> set[int]:
    """The CPUs a process (or one of its threads) may run on, from /proc."""
    path = Path(f"/proc/{pid}/task/{thread}/status" if thread else f"/proc/{pid}/status")
    listed = re.search(r"^Cpus_allowed_list:\s*(\S+)$", path.read_text(), re.MULTILINE)
    assert listed is not None
    cpus: set[int] = set()
    for part in listed.group(1).split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def holder(slots: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        env={**os.environ, SLOTS_VARIABLE: slots},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def pinned_to(process: subprocess.Popen[str]) -> tuple[str, str]:
    """What a holder said: the CPU it took (or None) and the CPUs it may then run on."""
    assert process.stdout is not None
    cpu, _, allowed = process.stdout.readline().strip().partition(" ")
    return cpu, allowed


def release(process: subprocess.Popen[str]) -> None:
    """Let a holder end."""
    process.communicate(timeout=30)


def test_no_slots_when_pinning_is_off():
    environ: dict[str, str] = {}
    with cpu_slots(environ, workers=1, enabled=False) as why:
        assert why is None
        assert SLOTS_VARIABLE not in environ


def test_more_workers_than_cpus_are_not_pinned_and_say_why():
    environ: dict[str, str] = {}
    with cpu_slots(environ, workers=len(CPUS) + 1, enabled=True) as why:
        assert why == f"{len(CPUS) + 1} workers on {len(CPUS)} CPUs: more workers than CPUs, none pinned"
        assert SLOTS_VARIABLE not in environ
    assert why_not_pinned(1, []) == "this platform cannot pin processes to CPUs"


def cgroup(tmp_path: Path, membership: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A cgroup tree under ``tmp_path`` holding ``files`` (by path), and a process's membership."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    (tmp_path / "membership").write_text(membership)
    return root, tmp_path / "membership"


@pytest.mark.parametrize(
    ("membership", "files", "quota"),
    [
        ("0::/\n", {"cpu.max": "150000 100000"}, 1.5),  # cgroup v2, `docker run --cpus 1.5`
        ("0::/app.slice\n", {"app.slice/cpu.max": "50000 100000", "cpu.max": "max 100000"}, 0.5),
        ("0::/\n", {"cpu.max": "max 100000"}, None),  # v2, no quota
        # a quota set on a group above the process's (a pod's, say) limits it too; the smallest holds
        (
            "0::/pods/pod1/box\n",
            {"pods/pod1/cpu.max": "200000 100000", "pods/pod1/box/cpu.max": "max 100000"},
            2.0,
        ),
        (
            "0::/pods/pod1/box\n",
            {"pods/cpu.max": "100000 100000", "pods/pod1/box/cpu.max": "300000 100000"},
            1.0,
        ),
        ("0::/\n", {"cpu.max": "²00000 100000"}, None),  # not a number the kernel would write
        ("garbage\n0::/\n", {"cpu.max": "100000 100000"}, 1.0),  # a line not in the format, skipped
        ("0::/\n", {}, None),  # v2 without the cpu controller
        (
            "3:cpu,cpuacct:/\n",
            {"cpu,cpuacct/cpu.cfs_quota_us": "200000", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
            2.0,
        ),
        ("1:cpu:/\n2:memory:/x\n", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        # a hybrid machine: the unified hierarchy has no cpu controller, v1's cpu has the quota
        ("1:cpu:/\n0::/\n", {"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3.0),
    ],
)
def test_a_cgroup_cpu_quota_is_read_from_either_version(tmp_path, membership, files, quota):
    root, member = cgroup(tmp_path, membership, files)
    assert cpu_quota(root, member) == quota


def test_an_unreadable_cgroup_membership_is_no_quota(tmp_path):
    assert cpu_quota(tmp_path, tmp_path / "missing") is None


def test_workers_under_a_cpu_quota_are_not_pinned_and_say_why():
    assert why_not_pinned(2, [0, 1, 2, 3], 1.5) == (
        "a CPU quota of 1.5 CPUs on 4 CPUs: the time is limited rather than the CPUs, which other "
        "processes may keep busy; none pinned"
    )
    assert why_not_pinned(2, [0, 1], 2.0) is None  # a quota of every CPU limits nothing
    assert why_not_pinned(2, [0, 1], None) is None


def test_serving_under_a_cpu_quota_makes_no_slots(monkeypatch):
    monkeypatch.setattr(cpu_pinning, "cpu_quota", lambda: 0.5)
    environ: dict[str, str] = {}
    with cpu_slots(environ, workers=1, enabled=True) as why:
        assert why is not None and why.startswith(f"a CPU quota of 0.5 CPUs on {len(CPUS)} CPUs")
        assert SLOTS_VARIABLE not in environ


def test_serving_makes_one_slot_per_cpu_and_removes_them_after():
    environ: dict[str, str] = {}
    with cpu_slots(environ, workers=1, enabled=True) as why:
        assert why is None
        slots = Path(environ[SLOTS_VARIABLE])
        assert sorted(path.name for path in slots.iterdir()) == sorted(f"cpu-{cpu}" for cpu in CPUS)
    assert SLOTS_VARIABLE not in environ
    assert not slots.exists()


def test_a_worker_without_slots_is_left_where_it_is():
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        env={key: value for key, value in os.environ.items() if key != SLOTS_VARIABLE},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert pinned_to(process) == ("None", str(CPUS))
    release(process)


def test_workers_take_free_slots_in_turn_and_a_dead_ones_slot_again():
    environ: dict[str, str] = {}
    with cpu_slots(environ, workers=1, enabled=True):
        # given a worker holding each CPU's slot
        holders = [holder(environ[SLOTS_VARIABLE]) for _ in CPUS]
        taken = sorted(pinned_to(process) for process in holders)
        assert taken == sorted((str(cpu), str([cpu])) for cpu in CPUS)
        # when one more starts, it finds none free: it stays unpinned
        extra = holder(environ[SLOTS_VARIABLE])
        assert pinned_to(extra) == ("None", str(CPUS))
        release(extra)
        # when the worker on the first CPU ends, the next to start takes its slot
        first = next(process for process in holders if pinned_to_cpu(process) == CPUS[0])
        release(first)
        successor = holder(environ[SLOTS_VARIABLE])
        assert pinned_to(successor) == (str(CPUS[0]), str([CPUS[0]]))
        for process in [successor, *holders]:
            if process.returncode is None:
                release(process)


def pinned_to_cpu(process: subprocess.Popen[str]) -> int | None:
    """The CPU a holder already said it took (read once by :func:`pinned_to`), from /proc."""
    allowed = allowed_cpus(process.pid)
    return next(iter(allowed)) if len(allowed) == 1 else None


def _pinned_workers(log_path: Path, count: int) -> dict[int, int]:
    """{worker pid: CPU} from the server's log, once ``count`` workers said so."""
    deadline = time.monotonic() + 30
    while True:
        found = {int(pid): int(cpu) for pid, cpu in PINNED.findall(log_path.read_text())}
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@needs_two_cpus
@pytest.mark.server
def test_serve_pins_each_worker_and_all_its_threads_to_a_cpu_of_its_own(database_url, tmp_path):
    # given the real server with two workers
    env = {**server_env(database_url, tmp_path), "GIFTCARDS_LOG_LEVEL": "info"}
    with running_server(env, tmp_path / "server.log"):
        # then each worker says which CPU it took, a different one each
        workers = _pinned_workers(tmp_path / "server.log", 2)
        assert sorted(workers.values()) == CPUS[:2], (tmp_path / "server.log").read_text()
        # and the kernel keeps every thread of it there
        for pid, cpu in workers.items():
            threads = [int(thread) for thread in os.listdir(f"/proc/{pid}/task")]
            assert len(threads) > 1
            for thread in threads:
                with contextlib.suppress(FileNotFoundError):  # an idle thread that ended meanwhile
                    assert allowed_cpus(pid, thread) == {cpu}


@needs_two_cpus
@pytest.mark.server
def test_serve_pins_no_worker_when_told_not_to(database_url, tmp_path):
    env = {
        **server_env(database_url, tmp_path),
        "GIFTCARDS_LOG_LEVEL": "info",
        "GIFTCARDS_PIN_WORKERS": "false",
    }
    with running_server(env, tmp_path / "server.log") as server:
        assert server.process is not None
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
        assert children
        assert all(allowed_cpus(int(child)) == set(CPUS) for child in children)
    assert "pinned to CPU" not in (tmp_path / "server.log").read_text()
