"""The import arrows point one way: http/cli → graphql → domain → store/models → config/errors."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

APP = ROOT / "app"

# What each layer must never import.
FORBIDDEN = {
    "app/domain": ("strawberry", "starlette", "uvicorn", "app.graphql", "app.http", "app.cli"),
    "app/store": ("strawberry", "starlette", "app.graphql", "app.domain", "app.http", "app.cli"),
    "app/models.py": ("strawberry", "starlette", "app.graphql", "app.domain", "app.store"),
    "app/program_models.py": ("strawberry", "starlette", "app.graphql", "app.domain", "app.store"),
    "app/token_models.py": ("strawberry", "starlette", "app.graphql", "app.domain", "app.store"),
    "app/db.py": ("strawberry", "starlette", "app.graphql", "app.domain", "app.store"),
    "app/db_unreachable.py": ("app.",),
    "app/db_pool.py": ("strawberry", "starlette", "app.graphql", "app.domain", "app.store", "app.db"),
    "app/policy.py": ("strawberry", "starlette", "app.graphql", "app.store", "app.db"),
    "app/policy_file.py": ("strawberry", "starlette", "app.graphql", "app.store", "app.db"),
    "app/auth": ("strawberry", "starlette", "app.graphql", "app.store", "app.db"),
    "app/graphql": ("app.http", "app.cli", "sqlalchemy", "sqlmodel", "app.store", "app.db"),
    "app/services.py": ("strawberry", "starlette", "app.graphql", "app.http", "app.cli"),
    "app/middleware.py": ("app.http", "app.cli", "app.graphql", "app.domain", "app.store", "app.db"),
    "app/observe.py": ("app.http", "app.cli", "app.graphql", "app.domain", "app.store", "app.db"),
    "app/metrics.py": ("strawberry", "starlette", "app.graphql", "app.http", "app.domain", "app.store"),
    "app/metrics_route.py": ("strawberry", "app.graphql", "app.http", "app.cli", "app.domain"),
    "app/events.py": ("app.",),
    "app/logs.py": ("app.http", "app.cli", "app.graphql", "app.domain", "app.store", "app.db", "starlette"),
    "app/graphiql.py": ("app.http", "app.cli", "app.graphql", "app.domain", "app.store", "app.db"),
    "app/certificates.py": (
        "strawberry",
        "starlette",
        "app.graphql",
        "app.http",
        "app.cli",
        "app.store",
        "app.db",
    ),
    "app/certificate_route.py": ("strawberry", "app.graphql", "app.http", "app.cli", "app.store", "app.db"),
    "app/negotiation.py": ("strawberry", "starlette", "app.http", "app.graphql", "app.domain", "app.store"),
    "app/graphql_view.py": ("app.http", "app.cli", "app.domain", "app.store", "app.db"),
    "app/config.py": ("app.domain", "app.store", "app.db", "app.models", "app.graphql", "app.policy"),
    "app/keyrings.py": ("app.domain", "app.store", "app.db", "app.models", "app.graphql", "app.policy"),
    "app/state_file.py": ("app.domain", "app.store", "app.db", "app.models", "app.graphql", "app.policy"),
    "app/stores.py": (
        "strawberry",
        "starlette",
        "app.graphql",
        "app.domain",
        "app.store",
        "app.db",
        "app.policy",
    ),
    "app/cli_stores.py": ("strawberry", "starlette", "app.http", "app.graphql"),
    "app/cli_ledger.py": ("strawberry", "starlette", "app.http", "app.graphql"),
    "app/errors.py": ("app.",),
    "app/writer_queue.py": ("app.",),
    "app/reader_threads.py": ("app.",),
    "app/ids.py": ("app.",),
    "app/enums.py": ("app.",),
    "app/currencies.py": ("app.",),
    "app/origins.py": ("app.",),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _files(target: str) -> list[Path]:
    path = ROOT / target
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


@pytest.mark.parametrize("target", sorted(FORBIDDEN))
def test_layer_does_not_import_upwards(target):
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _files(target)
        for name in _imports(path)
        if any(name == banned or name.startswith(banned.rstrip(".") + ".") for banned in FORBIDDEN[target])
    ]
    assert offenders == []


def test_only_entry_points_read_the_environment():
    readers = [
        str(path.relative_to(ROOT))
        for path in APP.rglob("*.py")
        if "load_settings(" in path.read_text() or "os.environ" in path.read_text()
    ]
    assert sorted(readers) == [
        "app/cli.py",
        "app/cli_keys.py",
        "app/cli_stores.py",
        "app/config.py",
        "app/http.py",
    ]
