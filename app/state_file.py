"""The development state file (``secrets.json`` in ``GIFTCARDS_STATE_DIR``): the secrets development
generates once when they are unset, the keys `giftcards keys rotate` adds to it, and the lock every
development server holds while it runs on them. Production never reads or writes it.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from app.errors import ConfigurationError
from app.keyrings import LEGACY_LOOKUP_KEY_ID, key_material, keyring_entries

if TYPE_CHECKING:
    from app.config import Settings

STATE_FILE = "secrets.json"
_STATE_LOCK = f".{STATE_FILE}.lock"
SERVING_LOCK = ".serving.lock"

# Secrets that development generates once into the state file when they are unset. Production
# never generates: a missing one is a start-up error naming the variable to set.
GENERATED_SECRETS = ("jwt_secret", "code_lookup_key", "code_encryption_keys", "pin_keys")


def development_key_material(state_dir: Path) -> set[str]:
    """Every key a development state file holds (none when there is no such file)."""
    try:
        state = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return set()
    values = state.values() if isinstance(state, dict) else ()
    return set().union(*(key_material(value) for value in values if isinstance(value, str)))


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def with_development_secrets(settings: Settings, *, create: bool = True) -> Settings:
    """Fill unset secrets from the git-ignored state file, creating it once (unless not to
    ``create`` it: then they stay unset): the CLI and every server worker read the same file, so a
    token minted by ``giftcards token`` is accepted by the server."""
    missing = [name for name in GENERATED_SECRETS if getattr(settings, name) is None]
    if settings.code_lookup_keys is not None and "code_lookup_key" in missing:
        missing.remove("code_lookup_key")
    if not missing or not (create or (settings.state_dir / STATE_FILE).exists()):
        return settings
    state = _read_or_create_state(settings.state_dir)
    update = {name: SecretStr(state[name]) for name in missing}
    if settings.pin_pepper is None and "pin_pepper" in state:  # argon2 PINs of an older version
        update["pin_pepper"] = SecretStr(state["pin_pepper"])
    if "code_lookup_key" in missing and "code_lookup_keys" in state:  # rotated: a keyring
        del update["code_lookup_key"]
        update["code_lookup_keys"] = SecretStr(state["code_lookup_keys"])
    return settings.model_copy(update=update)


def _read_or_create_state(state_dir: Path) -> dict[str, str]:
    path = state_dir / STATE_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    fresh = {
        "jwt_secret": secrets.token_urlsafe(48),
        "code_lookup_key": new_key(),
        "code_encryption_keys": "dev1:" + new_key(),
        "pin_keys": "pk1:" + new_key(),
        "pin_pepper": new_key(),  # only for argon2 PINs written by an older version
    }
    try:
        # O_EXCL: when two workers start together, exactly one writes the file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            json.dump(fresh, handle)
    for _ in range(50):
        try:
            state = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError):  # being written by the other worker
            time.sleep(0.02)
            continue
        if all(name in state for name in GENERATED_SECRETS):
            return dict(state)
        return _complete_state(state_dir, fresh)
    raise ConfigurationError(f"cannot read {path}")


def _complete_state(state_dir: Path, fresh: dict[str, str]) -> dict[str, str]:
    """Add the secrets a state file written by an older version lacks (PIN keys, say), under a file
    lock so that workers starting together agree on one key."""
    with _locked(state_dir / _STATE_LOCK, fcntl.LOCK_EX):
        state = json.loads((state_dir / STATE_FILE).read_text())
        if not isinstance(state, dict) or "jwt_secret" not in state:
            raise ConfigurationError(f"{state_dir / STATE_FILE} is incomplete; delete it to regenerate")
        added = {name: fresh[name] for name in GENERATED_SECRETS if name not in state}
        if added:
            _write_state(state_dir, {**state, **added})
        return {**state, **added}


@contextmanager
def _locked(path: Path, operation: int) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, operation)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def serving(state_dir: Path) -> Iterator[None]:
    """Held (shared) by every development server while it runs on the state file's keys, so that
    `keys rotate` can tell, and refuse to change the keys under it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with _locked(state_dir / SERVING_LOCK, fcntl.LOCK_SH):
        yield


def server_running(state_dir: Path) -> bool:
    """Whether a development server holds the state file's keys now."""
    path = state_dir / SERVING_LOCK
    if not path.exists():
        return False
    try:
        with _locked(path, fcntl.LOCK_EX | fcntl.LOCK_NB):
            return False
    except BlockingIOError:
        return True


def _write_state(state_dir: Path, state: dict[str, str]) -> None:
    """Replace the state file atomically (readers see the old file or the new one)."""
    path = state_dir / STATE_FILE
    temporary = path.with_name(f".{STATE_FILE}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def add_development_keys(state_dir: Path) -> list[str]:
    """Put a new encryption, lookup and PIN key first in the state file's keyrings; returns their ids.
    The old keys stay after them, so every existing row still opens, is found and its PIN verifies."""
    _read_or_create_state(state_dir)
    with _locked(state_dir / _STATE_LOCK, fcntl.LOCK_EX):
        state = json.loads((state_dir / STATE_FILE).read_text())
        state["code_lookup_keys"] = (
            state.get("code_lookup_keys") or f"{LEGACY_LOOKUP_KEY_ID}:{state['code_lookup_key']}"
        )
        added = []
        for name, prefix in (("code_encryption_keys", "dev"), ("code_lookup_keys", "lk"), ("pin_keys", "pk")):
            added.append(_next_key_id(prefix, state[name]))
            state[name] = f"{added[-1]}:{new_key()},{state[name]}"
        _write_state(state_dir, state)
    return added


def _next_key_id(prefix: str, keyring: str) -> str:
    """``prefix`` and a number above every id of that form in ``keyring`` ("dev1" → "dev2")."""
    numbers = [key_id[len(prefix) :] for key_id, *_ in keyring_entries(keyring) if key_id.startswith(prefix)]
    return f"{prefix}{max((int(number) for number in numbers if number.isdigit()), default=0) + 1}"
