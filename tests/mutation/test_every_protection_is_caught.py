"""Each protection, removed in turn, makes some test fail: no layer of isolation is untested.

The table this prints ("protection removed → tests that failed") is the evidence; the
assertions make the suite fail if a removal ever goes unnoticed.
"""

from __future__ import annotations

import pytest

from tests.mutation.protections import PROTECTIONS, filtered_query_functions
from tests.mutation.runner import Outcome, run_all, table


@pytest.fixture(scope="module")
def outcomes(admin_url: str) -> list[Outcome]:
    return run_all(admin_url)


def test_every_user_filtering_query_function_has_a_removal() -> None:
    """A new query function that takes a user_id must join the sweep (and so be tested)."""
    swept = {p.function for p in PROTECTIONS if p.layer == "filter"}
    assert filtered_query_functions() == swept


def test_the_suites_pass_with_every_protection_in_place(outcomes: list[Outcome]) -> None:
    baselines = [o for o in outcomes if o.removed is None]
    assert [o.layer for o in baselines] == ["rls", "filter"]
    assert all(o.ran > 0 and o.failed == () for o in baselines), table(baselines)


def test_every_filter_removal_really_removed_a_predicate(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.layer == "filter" and outcome.removed is not None:
            assert outcome.predicates_removed, outcome.removed


def test_removing_any_protection_fails_some_test(
    outcomes: list[Outcome], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print("\n" + table(outcomes))
    removed = [o.removed for o in outcomes if o.removed is not None]
    assert removed == [p.name for p in PROTECTIONS]
    uncaught = [o.removed for o in outcomes if o.removed is not None and not o.failed]
    assert uncaught == []
