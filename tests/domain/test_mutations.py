"""The mutation runner's steps and their order, with stand-ins for the database, the key store and
the audit trail (no database: tests/domain/test_idempotency.py runs the same paths for real)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from app.domain.mutations import Mutation, MutationRunner
from app.errors import ConflictError
from app.policy import Principal
from app.store import moves

ALICE = Principal("alice", frozenset({"ListGiftCards"}))


@dataclass
class Journal:
    """Everything the stand-ins were asked to do, in order."""

    steps: list[str] = field(default_factory=list)


class FakeUnit:
    def __init__(self, journal: Journal) -> None:
        self.journal, self.session = journal, SimpleNamespace(info={})

    def commit(self) -> None:
        self.journal.steps.append("commit")

    def __enter__(self) -> FakeUnit:
        self.journal.steps.append("begin")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.journal.steps.append("end")


class FakeIdempotency:
    def __init__(self, journal: Journal, stored: Any = None) -> None:
        self.journal, self.stored = journal, stored

    def keyed(self, principal, key, operation, request):
        return None if key is None else (key, operation, request)

    def claim(self, session, keyed, shape):
        self.journal.steps.append("claim" if self.stored is None else "claim: taken")
        return self.stored

    def committed(self, keyed, shape):
        self.journal.steps.append("committed")
        return self.stored

    def release(self, session, keyed) -> None:
        self.journal.steps.append("release")

    def seal(self, session, keyed, answer) -> None:
        self.journal.steps.append(f"seal {answer}")


class FakeAudit:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def mutated(self, session, principal, operation, result) -> None:
        self.journal.steps.append(f"audit {operation} {result}")

    def replayed(self, principal, operation, result) -> None:
        self.journal.steps.append(f"audit replayed {operation} {result}")


def _runner(journal: Journal, stored: Any = None) -> MutationRunner:
    return MutationRunner(
        lambda: FakeUnit(journal),  # type: ignore[arg-type,return-value]
        FakeIdempotency(journal, stored),  # type: ignore[arg-type]
        FakeAudit(journal),  # type: ignore[arg-type]
    )


def _work(journal: Journal, answer: str = "answer"):
    def work(session) -> str:
        journal.steps.append("work")
        return answer

    return work


def test_without_a_key_the_work_is_audited_and_committed_in_one_unit():
    journal = Journal()
    assert _runner(journal).run(ALICE, Mutation("op", {}, str), _work(journal)) == "answer"
    assert journal.steps == ["begin", "work", "audit op answer", "commit", "end"]


def test_work_that_wrote_its_audit_rows_with_its_balance_change_is_not_audited_again():
    journal = Journal()

    def moving(session) -> str:
        journal.steps.append("work")
        session.info[moves._AUDITED] = True  # as app.store.moves.move does once it has written them
        return "moved"

    assert _runner(journal).run(ALICE, Mutation("op", {}, str, "k"), moving) == "moved"
    assert journal.steps == ["begin", "claim", "work", "seal moved", "commit", "end"]
    # work that wrote none is audited by the runner, as before
    journal.steps.clear()
    _runner(journal).run(ALICE, Mutation("op", {}, str), _work(journal))
    assert journal.steps == ["begin", "work", "audit op answer", "commit", "end"]


def test_with_a_new_key_the_key_is_claimed_first_and_the_answer_sealed_before_the_commit():
    journal = Journal()
    _runner(journal).run(ALICE, Mutation("op", {}, str, "k"), _work(journal))
    assert journal.steps == ["begin", "claim", "work", "audit op answer", "seal answer", "commit", "end"]


def test_a_taken_key_replays_the_stored_answer_audited_after_its_unit_ends():
    journal = Journal()
    assert (
        _runner(journal, stored="first").run(ALICE, Mutation("op", {}, str, "k"), _work(journal)) == "first"
    )
    assert journal.steps == ["begin", "claim: taken", "end", "audit replayed op first"]


@pytest.mark.parametrize(("key", "released"), [(None, []), ("k", ["release"])])
def test_a_guard_refusal_keeps_what_the_guard_wrote_and_runs_no_work(key, released):
    journal = Journal()

    def guard(session):
        journal.steps.append("guard")
        return ConflictError("no: refused", field="no")

    with pytest.raises(ConflictError, match="refused"):
        _runner(journal).run(ALICE, Mutation("op", {}, str, key), _work(journal), guard)
    claimed = [] if key is None else ["claim"]
    assert journal.steps == ["begin", *claimed, "guard", *released, "commit", "end"]


def test_a_guard_that_passes_lets_the_work_run():
    journal = Journal()
    _runner(journal).run(ALICE, Mutation("op", {}, str, "k"), _work(journal), lambda session: None)
    assert "work" in journal.steps and journal.steps[-2:] == ["commit", "end"]


def test_failing_work_commits_nothing_and_is_not_audited():
    journal = Journal()

    def failing(session):
        raise ConflictError("no: failed", field="no")

    with pytest.raises(ConflictError):
        _runner(journal).run(ALICE, Mutation("op", {}, str, "k"), failing)
    assert journal.steps == ["begin", "claim", "end"]


def test_replay_asks_the_committed_answer_and_audits_only_a_hit():
    journal = Journal()
    assert _runner(journal, stored="first").replay(ALICE, Mutation("op", {}, str, "k")) == "first"
    assert journal.steps == ["committed", "audit replayed op first"]
    journal = Journal()
    assert _runner(journal).replay(ALICE, Mutation("op", {}, str, "k")) is None
    assert journal.steps == ["committed"]


def test_replay_without_a_key_reads_nothing():
    journal = Journal()
    assert _runner(journal, stored="first").replay(ALICE, Mutation("op", {}, str)) is None
    assert journal.steps == []
