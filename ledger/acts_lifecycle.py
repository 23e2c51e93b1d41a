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
from typing import Final, Literal

#: ``preservation_response.status`` (Budapest Art 29(3)-(6)).
PreservationStatus = Literal[
    "preserved", "partially_preserved", "refused", "future_availability_not_ensured"
]

#: answer type -> the field that holds its status.
ANSWER_STATUS_FIELD: Final[Mapping[str, str]] = {
    "mla_response": "status",
    "sovereignty_response": "response",
    "preservation_response": "status",
    "traffic_path_disclosure": "status",
    "provider_request_answer": "decision",
    "epoc_enforcing_decision": "decision",
    "addressee_report": "outcome",
    "eio_response": "status",
    "jit_accession": "type",
}

#: answer type -> the statuses after which the request it answers is answered.
FINAL_STATUSES: Final[Mapping[str, frozenset[str]]] = {
    "mla_response": frozenset(
        {"executed", "partially_executed", "refused", "evidence_transferred"}
    ),
    "sovereignty_response": frozenset({"consented", "objected", "refused"}),
    "preservation_response": frozenset(
        {"preserved", "partially_preserved", "refused", "future_availability_not_ensured"}
    ),
    "traffic_path_disclosure": frozenset({"disclosed", "refused"}),
    "provider_request_answer": frozenset(
        {"no_objection", "conditions", "instruct_not_to_disclose"}
    ),
    "epoc_enforcing_decision": frozenset({"no_ground_raised", "ground_raised"}),
    "addressee_report": frozenset({"delivered", "preserved", "impossible"}),
    "eio_response": frozenset({"refused", "executed"}),
    "jit_accession": frozenset({"jit_accession"}),
}

#: answer type -> the statuses that grant the request, wholly or in part.
GRANTING_STATUSES: Final[Mapping[str, frozenset[str]]] = {
    "mla_response": frozenset({"executed", "partially_executed", "evidence_transferred"}),
    "sovereignty_response": frozenset({"consented"}),
    "preservation_response": frozenset({"preserved", "partially_preserved"}),
    "traffic_path_disclosure": frozenset({"disclosed"}),
    "provider_request_answer": frozenset({"no_objection", "conditions"}),
    "epoc_enforcing_decision": frozenset({"no_ground_raised"}),
    "addressee_report": frozenset({"delivered", "preserved"}),
    "eio_response": frozenset({"recognised", "executed"}),
    "jit_accession": frozenset({"jit_accession"}),
}

#: answer type -> the request types it may answer.
ANSWERS: Final[Mapping[str, frozenset[str]]] = {
    "mla_response": frozenset({"mla_request", "emergency_disclosure"}),
    "preservation_response": frozenset({"preservation_request"}),
    "traffic_path_disclosure": frozenset({"preservation_request"}),
    "provider_request_answer": frozenset({"direct_provider_request"}),
    "epoc_enforcing_decision": frozenset({"epoc"}),
    "addressee_report": frozenset({"epoc", "epoc_pr"}),
    "eio_response": frozenset({"eio"}),
    "jit_accession": frozenset({"jit_agreement"}),
}

#: The phases of an ``epoc_pr`` (Regulation (EU) 2023/1543 Art 11, Annexes V and VI):
#: ``production_confirmed`` and ``termination`` are final.
EPOC_PR_PHASES: Final = ("initial", "extension", "production_confirmed", "termination")
EPOC_PR_FINAL_PHASES: Final = frozenset({"production_confirmed", "termination"})

#: A preservation's legal phase: answered by a final ``preservation_response``, then
#: ``pending_mla_decision`` once an ``mla_request`` names it in ``refs`` (Art 29(7):
#: preservation continues pending the decision on that request).
PRESERVATION_PHASES: Final = ("requested", "answered", "pending_mla_decision")


def preservation_phase(answered: bool, mla_referenced: bool) -> str:
    """The phase of a preservation request given what the chain holds about it."""
    if mla_referenced:
        return "pending_mla_decision"
    return "answered" if answered else "requested"


#: Clocks, each with its source (docs/ACTS.md §16; the texts read are listed under
#: "Sources read" there). Days unless named ``_HOURS``; "unverified": no stored text read.
CLOCKS: Final[Mapping[str, tuple[int, str]]] = {
    "preservation_art16_max_days": (90, "Budapest Art 16(2)"),
    "preservation_art29_min_days": (60, "Budapest Art 29(7)"),
    "epoc_pr_days": (60, "Reg. 2023/1543 Art 11(1)"),
    "epoc_pr_extension_days": (30, "Reg. 2023/1543 Art 11(1)"),
    "epoc_addressee_days": (10, "Reg. 2023/1543 Art 10(2)-(3)"),
    "epoc_emergency_addressee_hours": (8, "Reg. 2023/1543 Art 10(4)"),
    "epoc_enforcing_days": (10, "Reg. 2023/1543 Arts 10(2), 12(1)"),
    "epoc_enforcing_emergency_hours": (96, "Reg. 2023/1543 Arts 10(4), 12(1)"),
    "eio_recognition_days": (30, "Directive 2014/41/EU Art 12(3)"),
    "eio_recognition_extension_days": (30, "Directive 2014/41/EU Art 12(5)"),
    "eio_execution_days": (90, "Directive 2014/41/EU Art 12(4)"),
    "eio_acknowledgement_days": (7, "Directive 2014/41/EU Art 16(1) (one week, Annex B)"),
    "sap7_disclosure_days": (30, "SAP Art 7 (unverified)"),
}


def is_final(answer_type: str, status: str | None) -> bool:
    """Whether an answer of ``answer_type`` with ``status`` answers its request."""
    return status is not None and status in FINAL_STATUSES.get(answer_type, frozenset())


#: A request's phase on the read side (``lifecycle``): ``requested`` (no answer yet),
#: ``acknowledged`` (answers, none final), ``answered`` (a final answer),
#: ``pending_mla_decision`` (a preservation an MLA request names, Budapest Art 29(7)),
#: ``reported`` (the addressee's final report on an EPOC / EPOC-PR).
LIFECYCLE_PHASES: Final = (
    "requested",
    "acknowledged",
    "answered",
    "pending_mla_decision",
    "reported",
)


def answer_types_of(request_type: str) -> tuple[str, ...]:
    """The answer types that answer ``request_type``, in a stable order."""
    return tuple(sorted(a for a, requests in ANSWERS.items() if request_type in requests))


def lifecycle(
    request_type: str, answers: list[dict[str, object]], *, mla_referenced: bool = False
) -> dict[str, object] | None:
    """The legal state of one request from its committed answers, in commit order.

    ``answers`` are the read side's answer items (``type``, ``state``, ``answer``);
    the latest answer of each (type, state) is its status (docs/ACTS.md §4), and
    only a final status answers. None for a type nothing answers."""
    types = answer_types_of(request_type)
    if not types:
        return None
    status: dict[str, dict[str, dict[str, object]]] = {}
    for item in answers:
        if item["type"] not in types:
            continue
        answer_type, state, value = str(item["type"]), str(item["state"]), item["answer"]
        status.setdefault(answer_type, {})[state] = {
            "status": value,
            "final": is_final(answer_type, value if isinstance(value, str) else None),
            "id": item["id"],
        }
    latest = [entry for by_state in status.values() for entry in by_state.values()]
    answered = any(entry["final"] for entry in latest)
    if request_type == "preservation_request" and (answered or mla_referenced):
        phase = preservation_phase(answered, mla_referenced)
    elif any(e["final"] for e in status.get("addressee_report", {}).values()):
        phase = "reported"
    elif answered:
        phase = "answered"
    else:
        phase = "acknowledged" if latest else "requested"
    return {"phase": phase, "answer_types": list(types), "status": status}
