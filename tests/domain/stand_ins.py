"""Stand-ins shared by the domain's database-free tests."""

from __future__ import annotations

from typing import Any

from app.domain.mutations import Mutation
from app.policy import Principal


class Runner:
    """Stands in for the mutation runner: runs the work in the store's one session, keeps the
    mutation and who asked."""

    def __init__(self, store: Any) -> None:
        self.session = store.session
        self.mutations: list[Mutation] = []
        self.principals: list[Principal] = []

    def run(self, principal, mutation, work, guard=None):
        self.mutations.append(mutation)
        self.principals.append(principal)
        return work(self.session)


class Throttle:
    """Stands in for the code throttle: counts the units reserved and given back."""

    def __init__(self) -> None:
        self.reserved: list[tuple[object, ...]] = []
        self.given_back = 0

    def reserve(self, keys, limits=None):
        self.reserved.append(tuple(keys))
        return self

    def give_back(self) -> None:
        self.given_back += 1
