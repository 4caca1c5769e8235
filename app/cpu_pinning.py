"""Each worker of ``giftcards serve`` on a CPU of its own.

A worker's event loop hands every database call to a thread and takes the answer back (app.reader_
threads); a thread can run Python only while it holds the process's one GIL. Left to the scheduler,
the woken thread runs on the other core, so each hand-over crosses cores: it waits for the GIL on
one core while the loop lets it go on the other, and each side finds the other's data out of its
cache. On the 2-core bench machine that crossing cost about a quarter of a debit's CPU. A worker
whose threads share one core hands over within it; the workers, one per core, still use them all.

``giftcards serve`` makes a directory of slots, one file per CPU it may use, and names it to its
workers in ``_GIFTCARDS_CPU_SLOTS``. A worker takes the first slot whose file it can lock and
pins all its threads to that CPU (threads it starts later inherit it). The lock goes with the
process, so a worker that uvicorn starts again in place of a dead one takes the slot that one left.
Serving more workers than CPUs, under a CPU quota (a container limited to part of the host's CPU
time rather than to a set of its CPUs), or on a platform without CPU affinity, nothing is pinned.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import IO

SLOTS_VARIABLE = "_GIFTCARDS_CPU_SLOTS"  # internal, from `giftcards serve` to its workers: not a setting
_SLOT_PREFIX = "cpu-"
_held: dict[int, IO[bytes]] = {}  # this process's CPU and its slot, locked while the process lives
CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus() -> list[int]:
    """The CPUs this process may run on, in order; none where the platform cannot pin."""
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        return []
    return sorted(os.sched_getaffinity(0))


def cpu_quota(root: Path = CGROUP_ROOT, membership: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPUs' worth of time this process may use (``docker run --cpus``): the smallest quota of
    its cgroup and of the groups above it (cgroup v2's ``cpu.max``, v1's CFS quota and period), or
    None when none sets one or none can be read."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        if line.count(":") < 2:
            continue  # not a "hierarchy:controllers:path" line
        _, controllers, group = line.split(":", 2)
        if controllers == "":  # cgroup v2
            base, read = root, _v2_quota
        elif "cpu" in controllers.split(","):
            base = next((root / name for name in ("cpu", "cpu,cpuacct") if (root / name).is_dir()), root)
            read = _v1_quota
        else:
            continue
        leaf = base / group.lstrip("/")
        for directory in (leaf, *leaf.parents):
            if directory != base and base not in directory.parents:
                break  # above the hierarchy's root
            if (quota := read(directory)) is not None:
                quotas.append(quota)
    return min(quotas, default=None)


def _v2_quota(directory: Path) -> float | None:
    quota, _, period = (_read(directory / "cpu.max") or "max").partition(" ")  # "max 100000": none
    return _ratio(quota, period)


def _v1_quota(directory: Path) -> float | None:
    quota = _read(directory / "cpu.cfs_quota_us") or "-1"  # -1: none
    return _ratio(quota, _read(directory / "cpu.cfs_period_us") or "")


def _ratio(quota: str, period: str) -> float | None:
    if quota.isdecimal() and period.isdecimal() and int(quota) > 0 and int(period) > 0:
        return int(quota) / int(period)
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def why_not_pinned(workers: int, cpus: list[int], quota: float | None = None) -> str | None:
    """Why ``workers`` workers are not pinned on ``cpus`` under a CPU ``quota``; None when they are."""
    if not cpus:
        return "this platform cannot pin processes to CPUs"
    if workers > len(cpus):
        return f"{workers} workers on {len(cpus)} CPUs: more workers than CPUs, none pinned"
    if quota is not None and quota < len(cpus):
        return (
            f"a CPU quota of {quota:g} CPUs on {len(cpus)} CPUs: the time is limited rather than the "
            "CPUs, which other processes may keep busy; none pinned"
        )
    return None


@contextlib.contextmanager
def cpu_slots(environ: MutableMapping[str, str], workers: int, enabled: bool) -> Iterator[str | None]:
    """While serving: a slot for each usable CPU, named in ``environ`` for the workers before they
    start. Yields why the workers are not pinned (None when they are, or when ``enabled`` is off)."""
    cpus = usable_cpus()
    why = why_not_pinned(workers, cpus, cpu_quota()) if enabled else None
    if not enabled or why is not None:
        yield why
        return
    with tempfile.TemporaryDirectory(prefix="giftcards-cpus-") as directory:
        for cpu in cpus:
            (Path(directory) / f"{_SLOT_PREFIX}{cpu}").touch()
        environ[SLOTS_VARIABLE] = directory
        try:
            yield None
        finally:
            del environ[SLOTS_VARIABLE]


def pin_worker(environ: Mapping[str, str]) -> int | None:
    """Pin this worker's threads to the first free CPU slot ``giftcards serve`` made; that CPU (the
    one it holds, when called again), or None when it made none (another process manager, pinning
    off) or every slot is taken."""
    directory = environ.get(SLOTS_VARIABLE)
    if _held or not directory:
        return next(iter(_held), None)
    slots = sorted(
        Path(directory).glob(f"{_SLOT_PREFIX}*"), key=lambda path: int(path.name[len(_SLOT_PREFIX) :])
    )
    for slot in slots:
        handle = slot.open("rb")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        cpu = int(slot.name[len(_SLOT_PREFIX) :])
        _held[cpu] = handle
        _pin_threads(cpu)
        return cpu
    return None


def _pin_threads(cpu: int) -> None:
    """Every thread of this process (and so those they start) on ``cpu``."""
    for thread in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(thread), {cpu})
