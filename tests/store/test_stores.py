"""The store directory: adding and listing stores, and telling which of a token's stores exist (with
the cache a running server keeps), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from app.errors import ConflictError
from app.services import Services
from app.store.stores import StoreDirectory


def test_list_is_by_id_and_narrows_to_the_ids_given(services: Services) -> None:
    # given the default store and two added out of order
    directory = StoreDirectory(services.engine)
    directory.add("zeta", "Zeta")
    directory.add("alpha", None)
    # then the whole list is by id, and asking for some gives those only (unknown ids are not an error)
    assert [store.id for store in directory.list()] == ["alpha", "default", "zeta"]
    assert [(store.id, store.name) for store in directory.list(["zeta", "nowhere"])] == [("zeta", "Zeta")]
    assert directory.list([]) == []


def test_an_added_store_reads_back_as_it_was_added(services: Services) -> None:
    directory = StoreDirectory(services.engine)
    added = directory.add("north", "North Shop")
    (read,) = directory.list(["north"])
    assert read == added
    assert read.created_at.tzinfo is not None


def test_adding_an_existing_id_is_a_conflict_naming_the_id(services: Services) -> None:
    directory = StoreDirectory(services.engine)
    directory.add("north", "North")
    for store_id in ("north", "default"):
        with pytest.raises(ConflictError) as refused:
            directory.add(store_id, "Again")
        assert refused.value.field == "id"
    assert [(store.id, store.name) for store in directory.list()] == [("default", None), ("north", "North")]


def test_unknown_names_the_first_missing_id(services: Services) -> None:
    directory = StoreDirectory(services.engine)
    directory.add("north", None)
    assert directory.unknown(["north", "default"]) is None
    assert directory.unknown([]) is None
    assert directory.unknown(["zz", "north", "mm"]) == "mm"


class _Clock:
    """Stands in for the ``time`` module in the directory: a monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_store_added_elsewhere_is_seen_once_the_cache_may_be_read_again(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr("app.store.stores.time", clock)
    # given a server's directory that has just read the stores
    server = StoreDirectory(services.engine)
    assert server.unknown(["east"]) == "east"
    # when another process adds the store
    StoreDirectory(services.engine).add("east", None)
    # then within the reload interval the server still says unknown (no query per request) ...
    clock.now += 0.9
    assert server.unknown(["east"]) == "east"
    # ... and once a second has passed it reads the stores again and knows it
    clock.now += 0.1
    assert server.unknown(["east"]) is None
