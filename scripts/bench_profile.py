"""Where a benchmarked server's time goes: py-spy samples of one worker, summed by module.

:func:`record` samples a worker ``RATE`` times a second without pausing it, keeping the samples in
which one of its threads holds the GIL: the worker's Python at work, not its threads waiting on the
database or the network (C code that lets the GIL go, such as sqlite3 running a statement, is left
out too). So the share of sample slots taken says how busy the worker's Python was.

``py-spy record --format raw`` writes one line per distinct stack, ``frame;frame;…;leaf COUNT``,
each frame ``function (path:line)``, outermost first. A sample's own time belongs to its leaf
frame; :func:`summarise` adds those up by module (a package for third-party code, ``app.…`` for
ours, ``stdlib:name`` for the standard library) and by function.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

RATE = 200  # samples a second
# Import names that say less than the distribution's name.
PACKAGES = {"graphql": "graphql-core", "_pytest": "pytest", "uvloop": "uvloop", "psycopg_binary": "psycopg"}
_FRAME = re.compile(r"^(?P<function>.*) \((?P<path>.*?)(?::(?P<line>\d+))?\)$")
_STDLIB = re.compile(r"/lib/python3\.\d+/(?!site-packages/)(?P<rest>.+)$")


@dataclass(frozen=True)
class Profile:
    """Own samples by module and by function (``module function``), and their total."""

    samples: int
    modules: Counter[str]
    functions: Counter[str]

    def lines(self, seconds: int, top: int = 10) -> list[str]:
        """The summary: how busy, then the ``top`` modules and functions by own samples."""
        if not self.samples:
            return ["no samples (the worker was idle, or py-spy saw nothing)"]
        slots = seconds * RATE
        shown = [
            f"{self.samples} samples holding the GIL of {slots} ({RATE}/s): its Python busy "
            f"{self.samples / slots:.0%} of the time; own time by module:"
        ]
        shown += [f"  {count / self.samples:6.1%}  {name}" for name, count in self.modules.most_common(top)]
        shown.append("own time by function:")
        shown += [f"  {count / self.samples:6.1%}  {name}" for name, count in self.functions.most_common(top)]
        return shown


def py_spy() -> str | None:
    """The py-spy next to this interpreter, else on PATH; None without one."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def children(pid: int) -> list[int]:
    """The process's children (every thread's), from /proc; empty when it has none or is gone."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return found


def worker(pid: int) -> int | None:
    """One worker of a multi-worker uvicorn under ``pid``: a child started by multiprocessing's
    spawn (the resource tracker is also a child); ``pid`` itself when it has none but is alive (one
    worker serves in the server's own process, as ``giftcards serve`` does on SQLite); None when
    it is gone."""
    for child in children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            return child
    return pid if Path(f"/proc/{pid}").exists() else None


def record(pid: int, seconds: int, out: Path) -> subprocess.Popen[str]:
    """Start sampling ``pid`` for ``seconds`` into ``out`` (raw format), without pausing it."""
    binary = py_spy()
    if binary is None:
        raise FileNotFoundError("py-spy")
    command = [binary, "record", "--format", "raw", "--full-filenames", "--nonblocking", "--gil"]
    command += ["--rate", str(RATE)]
    command += ["--duration", str(seconds), "--pid", str(pid), "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def module_of(path: str, repo: Path) -> str:
    """A frame's file as a module name to group by."""
    if "site-packages/" in path:
        top = path.rsplit("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        return PACKAGES.get(top, top.split(".", 1)[0])
    app = str(repo / "app") + "/"
    if path.startswith(app):
        return "app." + path.removeprefix(app).removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    stdlib = _STDLIB.search(path)
    if stdlib:
        return "stdlib:" + stdlib.group("rest").split("/", 1)[0].removesuffix(".py")
    return path.rsplit("/", 1)[-1] or "?"


def summarise(raw: str, repo: Path) -> Profile:
    """Own samples of py-spy's raw output by module and by function."""
    modules: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        match = _FRAME.match(leaf)
        module = module_of(match.group("path"), repo) if match else "?"
        function = match.group("function") if match else leaf
        modules[module] += int(count)
        functions[f"{module} {function}"] += int(count)
        total += int(count)
    return Profile(total, modules, functions)
