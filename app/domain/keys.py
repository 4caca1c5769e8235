"""Key rotation: which key ids rows use, and moving code rows and PINs to the current keys in batches.

New codes are sealed under the first key of each keyring. Rows under an older key keep working
while it stays in its ring (lookups try every lookup key; each row names its AEAD key), so
:func:`rotate` moves them a batch (one transaction) at a time while the server runs; a run that
stops part-way is simply run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from app.domain.codes import CodeVault
from app.domain.pins import KEY_ID_SEPARATOR, PinKeys, StoredPin
from app.enums import CodeType
from app.errors import ConfigurationError
from app.store import keys as store

ENCRYPTION = "encryption"
LOOKUP = "lookup"
PIN = "PIN"
RING_SETTINGS = {
    ENCRYPTION: "GIFTCARDS_CODE_ENCRYPTION_KEYS",
    LOOKUP: "GIFTCARDS_CODE_LOOKUP_KEYS",
    PIN: "GIFTCARDS_PIN_KEYS",
}
_COLUMNS = {"key_id": ENCRYPTION, "lookup_key_id": LOOKUP, "request_key_id": LOOKUP}
DEFAULT_BATCH = 500


@dataclass(frozen=True)
class KeyUse:
    """One key id of one ring: whether it is configured, current, and the rows that use it."""

    ring: str  # ENCRYPTION, LOOKUP or PIN
    key_id: str
    current: bool
    configured: bool
    rows: dict[str, int] = field(default_factory=dict)  # table name → rows
    staged: bool = False  # configured with "+": known to every server, not yet current

    def add(self, table: str, rows: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + rows


@dataclass(frozen=True)
class KeyStatus:
    keys: tuple[KeyUse, ...]
    stale: int  # code rows not yet under the current keys
    stale_pins: int = 0  # keyed PINs whose outermost key is not the current PIN key
    argon2_pins: int = 0  # PINs still hashed as before keyed PINs (a right PIN replaces each)

    def missing(self) -> list[KeyUse]:
        """Key ids rows still use but the keyrings no longer hold."""
        return [use for use in self.keys if not use.configured]

    def removable(self) -> list[KeyUse]:
        """Old keys no row uses: they may leave their ring (a staged key is new, not old)."""
        old = [use for use in self.keys if use.configured and not use.current and not use.staged]
        return [use for use in old if not any(use.rows.values())]


def key_status(key_rows: store.KeyRows, vault: CodeVault, pins: PinKeys) -> KeyStatus:
    uses = _configured(
        {ENCRYPTION: vault.key_ids, LOOKUP: vault.lookup_key_ids, PIN: pins.key_ids},
        {ENCRYPTION: vault.staged_key_ids, LOOKUP: vault.staged_lookup_key_ids, PIN: pins.staged_key_ids},
    )
    _count_code_keys(key_rows, uses)
    counts = key_rows.pin_chain_counts()  # the None chain: argon2 PINs
    for chain, rows in counts.items():
        # A key anywhere in a chain is needed to verify it.
        for key_id in dict.fromkeys(() if chain is None else chain.split(KEY_ID_SEPARATOR)):
            _use(uses, PIN, key_id).add(store.PIN_TABLE, rows)
    stale = key_rows.count_stale(vault.active_key_id, vault.lookup_key_id)
    return KeyStatus(tuple(uses.values()), stale, _stale_pins(counts, pins), counts.get(None, 0))


def _count_code_keys(key_rows: store.KeyRows, uses: dict[tuple[str, str], KeyUse]) -> None:
    for count in key_rows.key_counts():
        ring = _COLUMNS[count.column]
        if count.key_id == store.UNKNOWN_KEY:  # older stored requests: they keep every lookup key
            for use in [use for (of, _), use in uses.items() if of == ring and use.configured]:
                use.add(count.table, count.rows)
        else:
            _use(uses, ring, count.key_id).add(count.table, count.rows)


def _configured(
    rings: dict[str, tuple[str, ...]], staged: dict[str, frozenset[str]]
) -> dict[tuple[str, str], KeyUse]:
    return {
        (ring, key_id): KeyUse(
            ring, key_id, current=index == 0, configured=True, staged=key_id in staged[ring]
        )
        for ring, ids in rings.items()
        for index, key_id in enumerate(ids)
    }


def _use(uses: dict[tuple[str, str], KeyUse], ring: str, key_id: str) -> KeyUse:
    """The key's entry; a key id rows use but no ring holds gets one, marked not configured."""
    return uses.setdefault((ring, key_id), KeyUse(ring, key_id, current=False, configured=False))


def check_keys_present(status: KeyStatus, rings: tuple[str, ...] = (ENCRYPTION, LOOKUP, PIN)) -> None:
    """Refuse when rows use a key id that is not in its keyring: name it and say what to do."""
    missing = [use for use in status.missing() if use.ring in rings]
    if not missing:
        return
    described = "; ".join(
        f"{use.ring} key {use.key_id!r} ({sum(use.rows.values())} rows) is not in {RING_SETTINGS[use.ring]}"
        for use in missing
    )
    raise ConfigurationError(
        f"{described}: put the key back after the current one, restart, run `giftcards keys rotate`, "
        "and remove it only when `giftcards keys status` shows no rows under it"
    )


def rotate(
    key_rows: store.KeyRows,
    vault: CodeVault,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Re-seal every code row not under the vault's current keys, a batch per transaction; returns
    how many were moved. Rows under an encryption key that is not configured stop the run before
    anything is written; rows under a lookup key that left its ring are moved (their hash is
    recomputed from the decrypted code)."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    encryption_keys = _configured({ENCRYPTION: vault.key_ids}, {ENCRYPTION: vault.staged_key_ids})
    _count_code_keys(key_rows, encryption_keys)
    check_keys_present(KeyStatus(tuple(encryption_keys.values()), stale=0), rings=(ENCRYPTION,))
    total = key_rows.count_stale(vault.active_key_id, vault.lookup_key_id)
    batches = key_rows.reseal_batches(
        vault.active_key_id, vault.lookup_key_id, batch_size, partial(_reseal, vault)
    )
    return _count_batches(batches, total, progress)


def _reseal(vault: CodeVault, row: store.SealedRow) -> store.Resealed:
    seal = vault.reseal(row.ciphertext, row.key_id, CodeType(row.code_type))
    return store.Resealed(row.id, seal.lookup_hash, seal.lookup_key_id, seal.ciphertext, seal.key_id)


def rotate_pins(
    key_rows: store.KeyRows,
    pins: PinKeys,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Wrap every keyed PIN whose outermost key is not the current PIN key under it; returns how
    many. No PIN is needed (the new value is HMAC(current key, old value)); verification follows the
    chain. PINs still hashed with argon2 stay until their next right PIN replaces them."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    total = _stale_pins(key_rows.pin_chain_counts(), pins)
    batches = key_rows.wrap_pin_batches(pins.current_key_id, batch_size, partial(_wrap, pins))
    return _count_batches(batches, total, progress)


def _wrap(pins: PinKeys, row: store.PinRow) -> store.PinRow | None:
    new = pins.wrap(StoredPin(row.pin_hash, row.pin_key_ids))
    return None if new is None else store.PinRow(row.id, new.value, new.key_ids or "")


def _count_batches(batches: Iterable[int], total: int, progress: Callable[[int, int], None] | None) -> int:
    """Run ``batches`` (each yields how many rows it moved), telling ``progress`` before and after each."""
    done = 0
    if progress:
        progress(done, total)
    for moved in batches:
        done += moved
        if progress:
            # Rows gone stale after the count (written by a server not knowing the new keys) move too.
            progress(done, max(total, done))
    return done


def _stale_pins(chain_counts: dict[str | None, int], pins: PinKeys) -> int:
    """Keyed PINs whose outermost key is not the current one."""
    return sum(
        rows
        for chain, rows in chain_counts.items()
        if chain is not None and chain.split(KEY_ID_SEPARATOR)[-1] != pins.current_key_id
    )


def check_pins_verifiable(key_rows: store.KeyRows, pins: PinKeys) -> None:
    """Refuse to serve PINs that could not be checked: argon2 ones without the pepper, or keyed
    ones under a key id the ring lacks (every such PIN check would fail as an internal error)."""
    counts = key_rows.pin_chain_counts()
    problems = []
    if counts.get(None) and not pins.has_pepper:
        problems.append(
            f"{counts[None]} PINs are still argon2 hashes: set GIFTCARDS_PIN_PEPPER as it was "
            "until `giftcards keys status` shows none"
        )
    missing = sorted(
        {key_id for chain in counts if chain is not None for key_id in chain.split(KEY_ID_SEPARATOR)}
        - set(pins.key_ids)
    )
    if missing:
        problems.append(
            f"PINs are stored under key ids {missing} that GIFTCARDS_PIN_KEYS does not hold: "
            "put them back after the current key"
        )
    if problems:
        raise ConfigurationError("; ".join(problems))
