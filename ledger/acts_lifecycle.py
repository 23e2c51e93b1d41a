"""The legal lifecycle of each request: which answer statuses exist, which are final.

Theory of operation
-------------------
A central authority asks "what is the legal state of this request, and what
is still due?" (issue 18). The answer types of the catalogue
(``ledger/acts.py``) record statuses; this module says, as data, what those
statuses mean, so the deadline engine (``node/evidence_deadlines.py``) and the
views need no copy of the law:

* ``ANSWER_STATUS_FIELD``: the field of each answer type that holds its status;
* ``FINAL_STATUSES``: the statuses after which the request is *answered* (an
  acknowledgement such as ``received`` is not an answer: an overdue emergency
  request must stay overdue until it is executed or refused);
* ``GRANTING_STATUSES``: the statuses that grant the request wholly or partly,
  the only ones that may carry ``conditions`` (Budapest Art 27(6));
* ``ANSWERS``: which answer type answers which request type.

Only final statuses count as answered; the latest answer of a state counts
(docs/ACTS.md §4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

#: answer type -> the field that holds its status.
ANSWER_STATUS_FIELD: Final[Mapping[str, str]] = {
    "mla_response": "status",
    "sovereignty_response": "response",
}

#: answer type -> the statuses after which the request it answers is answered.
FINAL_STATUSES: Final[Mapping[str, frozenset[str]]] = {
    "mla_response": frozenset(
        {"executed", "partially_executed", "refused", "evidence_transferred"}
    ),
    "sovereignty_response": frozenset({"consented", "objected", "refused"}),
}

#: answer type -> the statuses that grant the request, wholly or in part.
GRANTING_STATUSES: Final[Mapping[str, frozenset[str]]] = {
    "mla_response": frozenset({"executed", "partially_executed", "evidence_transferred"}),
    "sovereignty_response": frozenset({"consented"}),
}

#: answer type -> the request types it may answer.
ANSWERS: Final[Mapping[str, frozenset[str]]] = {
    "mla_response": frozenset({"mla_request", "emergency_disclosure"}),
}


def is_final(answer_type: str, status: str | None) -> bool:
    """Whether an answer of ``answer_type`` with ``status`` answers its request."""
    return status is not None and status in FINAL_STATUSES.get(answer_type, frozenset())
