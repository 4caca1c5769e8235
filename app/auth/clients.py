"""Registered clients of the token endpoint: add, list and remove them in ``permissions.yaml``.

The file is written by hand, so it is edited as text: a new entry goes at the end of the top-level
``clients:`` list, a removed one takes its own lines with it, and every other byte stays as it was.
The edited text must load with :func:`load_policy` and hold exactly the intended change before it
atomically replaces the file. The server reads the file at start-up: restart it afterwards.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.auth.secrets import hash_client_secret
from app.errors import ConfigurationError
from app.policy import Client, Policy
from app.policy_file import load_policy
from app.stores import MAX_STORES_PER_TOKEN, STORE_ID_RULE, is_store_id

# Letters, digits, '.', '_', '-': safe in logs, in YAML and inside HTTP Basic (no ':').
CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SECRET_BYTES = 32  # 256 bits, printed URL-safe (43 characters)
_DASH = re.compile(r"^ *- +$")


@dataclass(frozen=True)
class NewClient:
    id: str
    secret: str
    roles: tuple[str, ...]
    stores: tuple[str, ...] | None = None


def add_client(
    path: Path,
    client_id: str,
    roles: Sequence[str],
    description: str = "",
    stores: Sequence[str] | None = None,
) -> NewClient:
    """Register a client with a new random secret; only the secret's hash is written. ``stores``
    (None: none named, so the default store) become its tokens' ``stores`` claim."""
    policy = load_policy(path)
    if not CLIENT_ID.fullmatch(client_id):
        raise ConfigurationError(
            f"{client_id!r} is not a client id: 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    wanted = tuple(dict.fromkeys(roles))
    if not wanted:
        raise ConfigurationError("a client needs at least one --role")
    unknown = [role for role in wanted if role not in policy.roles]
    if unknown:
        raise ConfigurationError(
            f"unknown role(s) {', '.join(unknown)}; {path} defines {', '.join(policy.roles)}"
        )
    if client_id in policy.clients:
        raise ConfigurationError(f"client {client_id!r} already exists in {path}")
    store_ids = None if stores is None else _store_ids(stores)

    secret = secrets.token_urlsafe(SECRET_BYTES)
    client = Client(client_id, hash_client_secret(secret), wanted, store_ids)
    entry: dict[str, Any] = {"id": client.id, "secret_hash": client.secret_hash, "roles": list(wanted)}
    if store_ids is not None:
        entry["stores"] = list(store_ids)
    if description:
        entry["description"] = description
    _replace(path, _with_entry(_read(path), entry), policy, {**policy.clients, client.id: client})
    return NewClient(client.id, secret, wanted, store_ids)


def _store_ids(stores: Sequence[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(stores))
    malformed = [store_id for store_id in wanted if not is_store_id(store_id)]
    if malformed:
        raise ConfigurationError(f"{malformed[0]!r} is not a store id: {STORE_ID_RULE}")
    if len(wanted) > MAX_STORES_PER_TOKEN:
        raise ConfigurationError(f"a client names at most {MAX_STORES_PER_TOKEN} stores")
    return wanted


def remove_client(path: Path, client_id: str) -> Client:
    policy = load_policy(path)
    removed = policy.clients.get(client_id)
    if removed is None:
        raise ConfigurationError(f"no client {client_id!r} in {path}")
    remaining = {key: value for key, value in policy.clients.items() if key != client_id}
    _replace(path, _without_entry(_read(path), client_id), policy, remaining)
    return removed


# --- editing the text -----------------------------------------------------------------------------


def _read(path: Path) -> str:
    # Bytes in, bytes out: keep the file's own line endings.
    return path.read_bytes().decode("utf-8")


def _clients_node(text: str) -> tuple[yaml.Node, yaml.SequenceNode] | None:
    root = yaml.compose(text)
    assert isinstance(root, yaml.MappingNode)  # load_policy accepted this text
    for key, value in root.value:
        if key.value == "clients":
            assert isinstance(value, yaml.SequenceNode)
            return key, value
    return None


def _with_entry(text: str, entry: dict[str, Any]) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    found = _clients_node(text)
    if found is None:  # no list yet: start one at the end of the file
        tail = "" if not text or text.endswith("\n") else newline
        return text + tail + newline + "clients:" + newline + _block_item(entry, "  - ", newline)
    key, clients = found
    items = clients.value
    prefix = " " * (key.start_mark.column + 2) + "- "  # unless the first item shows its own
    if clients.flow_style and items:  # [{…}, {…}]: one more, in the same style
        flow = yaml.safe_dump(entry, default_flow_style=True, sort_keys=False, width=float("inf"))
        at = items[-1].end_mark.index
        return text[:at] + ", " + flow.strip() + text[at:]
    if clients.flow_style:  # "clients: []" becomes a block list; a comment on the line stays put
        line_end = _line_end(text, clients.end_mark.index)
        head = text[: clients.start_mark.index].rstrip(" ")
        rest = text[clients.end_mark.index : line_end]
        if not rest.endswith("\n"):
            rest += newline
        return head + rest + _block_item(entry, prefix, newline) + text[line_end:]
    first = items[0].start_mark.index
    own = text[text.rfind("\n", 0, first) + 1 : first]
    at = _content_end(text, items[-1])
    glue = "" if text[:at].endswith("\n") else newline
    return text[:at] + glue + _block_item(entry, own if _DASH.match(own) else prefix, newline) + text[at:]


def _without_entry(text: str, client_id: str) -> str:
    found = _clients_node(text)
    assert found is not None
    key, clients = found
    items = clients.value
    index = next(i for i, item in enumerate(items) if _entry_id(item) == client_id)
    item = items[index]
    if clients.flow_style:
        if len(items) == 1:
            return text[: clients.start_mark.index] + "[]" + text[clients.end_mark.index :]
        if index + 1 < len(items):
            return text[: item.start_mark.index] + text[items[index + 1].start_mark.index :]
        return text[: items[index - 1].end_mark.index] + text[item.end_mark.index :]
    start = text.rfind("\n", 0, item.start_mark.index) + 1
    text = text[:start] + text[_content_end(text, item) :]
    if len(items) == 1:  # the list is now empty: say so, or the key would read as null
        colon = text.index(":", key.end_mark.index) + 1
        text = text[:colon] + " []" + text[colon:]
    return text


def _entry_id(item: yaml.Node) -> str | None:
    if isinstance(item, yaml.MappingNode):
        for key, value in item.value:
            if key.value == "id" and isinstance(value, yaml.ScalarNode):
                return str(value.value)
    return None


def _block_item(entry: dict[str, Any], prefix: str, newline: str) -> str:
    dumped = yaml.safe_dump([entry], default_flow_style=None, sort_keys=False, width=float("inf"))
    lines = dumped.splitlines()
    indent = " " * len(prefix)
    out = [prefix + lines[0].removeprefix("- ")]
    out += [indent + line.removeprefix("  ") if line else line for line in lines[1:]]
    return newline.join(out) + newline


def _content_end(text: str, node: yaml.Node) -> int:
    """Index just past the line holding the last character of ``node`` (comments on it included)."""
    while not getattr(node, "flow_style", True) and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    index = node.end_mark.index
    if index > 0 and text[index - 1] == "\n":  # block scalars end after their line break
        return index
    return _line_end(text, index)


def _line_end(text: str, index: int) -> int:
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


# --- replacing the file ---------------------------------------------------------------------------


def _replace(path: Path, text: str, before: Policy, clients: Mapping[str, Client]) -> None:
    """Swap ``text`` in for ``path`` atomically once it loads as ``before`` with exactly ``clients``."""
    target = path.resolve()
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, stat.S_IMODE(target.stat().st_mode))
        try:
            edited = load_policy(temporary)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{path} was left unchanged: the edit would not load ({exc})") from None
        rules = ("catalogue", "code_types", "roles")
        same_rules = all(dict(getattr(before, name)) == dict(getattr(edited, name)) for name in rules)
        if not same_rules or dict(edited.clients) != clients:
            raise ConfigurationError(f"{path} was left unchanged: the edit did not come out as intended")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
