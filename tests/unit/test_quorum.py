"""Quorum arithmetic, table-driven (arXiv:1807.04938 section 2; docs/CONSENSUS.md "Model").

"2f+1" = more than two thirds of n equal votes = floor(2n/3)+1;
"f+1"  = more than one third = floor(n/3)+1; f = max faulty with n >= 3f+1.
"""

from __future__ import annotations

import pytest

from ledger.quorum import has_quorum, max_faulty, quorum, skip_threshold, vote_outcome

# n, f (max_faulty), quorum (2f+1 rule), skip (f+1 rule)
ROWS = [
    (1, 0, 1, 1),
    (2, 0, 2, 1),
    (3, 0, 3, 2),
    (4, 1, 3, 2),
    (5, 1, 4, 2),
    (6, 1, 5, 3),
    (7, 2, 5, 3),
    (8, 2, 6, 3),
    (9, 2, 7, 4),
    (10, 3, 7, 4),
    (100, 33, 67, 34),
    (190, 63, 127, 64),
]


@pytest.mark.parametrize(("n", "f", "q", "skip"), ROWS)
def test_quorum_table(n: int, f: int, q: int, skip: int) -> None:
    """Model: quorum(n) = floor(2n/3)+1, skip = floor(n/3)+1, n >= 3f+1."""
    assert max_faulty(n) == f
    assert quorum(n) == q
    assert skip_threshold(n) == skip
    assert n >= 3 * f + 1


@pytest.mark.parametrize(("n", "f", "q", "skip"), ROWS)
def test_quorum_properties(n: int, f: int, q: int, skip: int) -> None:
    """Safety argument ("Why it is safe"): two quorums intersect in > f validators,
    and a quorum is reachable with f silent validators; f+1 always includes a correct one."""
    assert 2 * q - n >= f + 1
    assert n - f >= q
    assert skip >= f + 1
    assert 3 * q > 2 * n and 3 * (q - 1) <= 2 * n
    assert 3 * skip > n and 3 * (skip - 1) <= n


@pytest.mark.parametrize(
    ("votes", "n", "expected"),
    [(2, 4, False), (3, 4, True), (4, 5, True), (3, 5, False), (126, 190, False), (127, 190, True)],
)
def test_has_quorum(votes: int, n: int, expected: bool) -> None:
    """Model: "2f+1 messages" means more than two thirds of the voting power."""
    assert has_quorum(votes, n) is expected


@pytest.mark.parametrize("fn", [quorum, skip_threshold, max_faulty])
def test_empty_set_rejected(fn: object) -> None:
    """Model: a validator set has n >= 1 members."""
    with pytest.raises(ValueError):
        fn(0)  # type: ignore[operator]


@pytest.mark.parametrize("n", range(1, 14))
def test_vote_outcome_is_the_documented_governance_rule(n: int) -> None:
    """docs/GOVERNANCE.md: passed iff 3*yes > 2n; rejected iff 3*(n-no) <= 2n; else open."""
    for yes in range(n + 1):
        for no in range(n + 1 - yes):
            if 3 * yes > 2 * n:
                expected = "passed"
            elif 3 * (n - no) <= 2 * n:
                expected = "rejected"
            else:
                expected = "open"
            assert vote_outcome(yes, no, n) == expected, (yes, no, n)


@pytest.mark.parametrize(
    ("yes", "no", "n", "expected"),
    [
        (3, 0, 4, "passed"),
        (2, 0, 4, "open"),
        (2, 2, 4, "rejected"),
        (1, 1, 4, "open"),
        (4, 0, 5, "passed"),
        (3, 1, 5, "open"),
        (3, 2, 5, "rejected"),
        (0, 1, 1, "rejected"),
    ],
)
def test_vote_outcome_rows(yes: int, no: int, n: int, expected: str) -> None:
    assert vote_outcome(yes, no, n) == expected
