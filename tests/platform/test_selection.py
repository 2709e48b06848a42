"""The seed's completion selection rules, one test per rule."""

from datetime import UTC, datetime, timedelta

from annoray.platform.labeling.selection import Candidate, select_completion
from annoray.platform.store.tables import CompletionStatus, ReviewStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SUB, DRAFT = CompletionStatus.SUBMITTED, CompletionStatus.DRAFT


def c(id: int, *, status=SUB, review=None, priority=0, minutes=0) -> Candidate:
    return Candidate(id, 1, status, review, priority, T0 + timedelta(minutes=minutes))


def test_reviewer_accepted_wins_over_higher_priority_and_newer() -> None:
    chosen = select_completion([c(1, priority=10, minutes=5), c(2, review=ReviewStatus.ACCEPTED, priority=0)])
    assert chosen.id == 2


def test_rejected_is_never_used_even_when_it_is_the_only_one() -> None:
    assert select_completion([c(1, review=ReviewStatus.REJECTED, priority=9)]) is None
    assert select_completion([c(1, review=ReviewStatus.REJECTED, priority=9), c(2)]).id == 2


def test_drafts_never_count() -> None:
    assert select_completion([c(1, status=DRAFT, priority=9)]) is None
    assert select_completion([c(1, status=DRAFT, priority=9, minutes=9), c(2)]).id == 2


def test_highest_priority_submitter_wins() -> None:
    assert select_completion([c(1, priority=1, minutes=9), c(2, priority=5)]).id == 2


def test_priority_ties_go_to_the_most_recent() -> None:
    assert select_completion([c(1, priority=3, minutes=9), c(2, priority=3, minutes=1)]).id == 1


def test_reviewed_only_uses_accepted_completions_only() -> None:
    assert select_completion([c(1, priority=5)], reviewed_only=True) is None
    assert select_completion([c(1, priority=5), c(2, review=ReviewStatus.ACCEPTED)], reviewed_only=True).id == 2
