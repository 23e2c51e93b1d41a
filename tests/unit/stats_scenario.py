"""The scripted 50-request scenario of the statistics tests (docs/STATISTICS.md).

Acts are committed by a real ``Application`` in blocks whose times the test chooses,
so every duration is a whole number of hours, counted by hand in test_stats.py.

Hour k (T0 + k h) commits request k; its answers follow at the hours given:

* A, k 0-19: ``mla_request`` CN -> TH, "Budapest Convention" (written three ways).
  k 0-3 ``received`` +1 h then ``executed`` +10/20/30/40 h; k 4-11 ``executed``
  +50..+120 h; k 12-15 only ``received`` +5 h; k 16-19 nothing.
* B, k 20-29: ``mla_request`` FR -> VN, "UNTOC". k 20-24 ``executed``
  +24/48/72/96/120 h; k 25 ``postponed`` +12 h then ``partially_executed`` +200 h;
  k 26 only ``postponed`` +12 h; k 27-28 nothing; k 29 ``executed`` at hour 1100,
  after ``AT``.
* C, k 30-39: ``preservation_request`` CN -> FR, "Budapest Convention". k 30-35
  ``preserved`` +2/4/6/8/10/12 h; k 36 ``future_availability_not_ensured`` +3 h;
  k 37-39 nothing.
* D, k 40-49: ``eio`` FR -> TH, no legal basis. k 40-43 ``acknowledged`` +4 h
  then ``executed`` +100/200/300/400 h; k 44-45 ``acknowledged`` +4 h and
  ``recognised`` +8 h; k 46 ``executed`` +50 h; k 47-49 nothing.

And records that are no request and no answer to one: a preservation's
extension (hour 300), a domestic preservation (hour 301) and a sovereignty
consent to request 16 (hour 302).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from api.cli.bootstrap import MemberKeys
from ledger.acts_templates import template
from ledger.block import CommitCertificate
from ledger.canonical import canonical_bytes
from ledger.private import split
from ledger.records import Envelope, format_time, parse_envelope, parse_time
from node.application import Application

T0 = datetime(2026, 3, 2, tzinfo=UTC)
H = timedelta(hours=1)
AT = T0 + 1000 * H
#: (request hour, answers: (hours after the request, status)).
Answers = list[tuple[int, str]]


@dataclass
class Builder:
    """Signed acts by the members' authority keys, committed at chosen block times."""

    app: Application
    members: Sequence[MemberKeys]
    nonce: int = 0
    pending: dict[datetime, list[Envelope]] = field(default_factory=dict)

    def record(self, actor: str, type_: str, hour: float, **fields: Any) -> dict[str, Any]:
        """A clear act of ``type_`` by ``actor`` at ``T0 + hour``; a field given None is
        dropped from the template."""
        self.nonce += 1
        moment = T0 + hour * H
        where = fields.get("territorial_states", ["TH"])[0]
        record = {
            **template(type_, state=actor, territorial_states=(where,), now=moment),
            "chain_id": self.app.chain_id,
            "nonce": f"stats{self.nonce:012d}",
            "occurred_at": format_time(moment),
            **({"visibility": "consortium"} if self.app.state.need_to_know_active(1) else {}),
            **fields,
        }
        return {k: v for k, v in record.items() if v is not None}

    def signed(self, actor: str, record: dict[str, Any]) -> Envelope:
        """``record`` signed by ``actor``'s authority key, to commit at its occurred_at."""
        key = next(m for m in self.members if m.state == actor).authority
        envelope = parse_envelope(
            {
                "record": record,
                "signer": key.public_hex,
                "signature": key.sign(canonical_bytes(record)).hex(),
            }
        )
        moment = parse_time(record["occurred_at"], "occurred_at")
        self.pending.setdefault(moment, []).append(envelope)
        return envelope

    def act(self, actor: str, type_: str, hour: float, **fields: Any) -> Envelope:
        return self.signed(actor, self.record(actor, type_, hour, **fields))

    def private_act(self, actor: str, type_: str, hour: float, **fields: Any) -> Envelope:
        """The act as a private header, its body held by this node (a party)."""
        clear = self.record(actor, type_, hour, visibility=None, **fields)
        until = format_time(T0 + 400 * 24 * H)
        header, body = split(clear, retain_until=until, ref_parties=lambda ref: [])
        envelope = self.signed(actor, header)
        self.app.bodies.put(envelope.id, body)
        return envelope

    def answer(
        self, request: Envelope, actor: str, type_: str, hour: float, **fields: Any
    ) -> Envelope:
        return self.act(
            actor,
            type_,
            hour,
            refs=[request.id],
            case_ref=request.record["case_ref"],
            territorial_states=[actor],
            **fields,
        )

    def commit_all(self) -> None:
        """One block per chosen time, oldest first (block times must increase)."""
        for moment in sorted(self.pending):
            height = self.app.height + 1
            proposer = self.app.state.validators(height)[0].state
            block, rejected = self.app.build_block(proposer, self.pending[moment], moment)
            for envelope in self.pending[moment]:
                if envelope.id in rejected:
                    self.app.check_record(envelope, moment)  # raises: say why
            assert format_time(moment) == block.header.time
            self.app.validate_block(block, now=None)
            self.app.commit(block, CommitCertificate(height, 0, block.hash))
        self.pending.clear()


def _basis(instrument: str) -> dict[str, Any]:
    return {"legal_basis": {"instrument": instrument, "article": "Art 27"}}


A: dict[int, Answers] = {
    **{k: [(1, "received"), (10 * (k + 1), "executed")] for k in range(4)},
    **{k: [(50 + 10 * (k - 4), "executed")] for k in range(4, 12)},
    **{k: [(5, "received")] for k in range(12, 16)},
    **{k: [] for k in range(16, 20)},
}
B: dict[int, Answers] = {
    **{k: [(24 * (k - 19), "executed")] for k in range(20, 25)},
    25: [(12, "postponed"), (200, "partially_executed")],
    26: [(12, "postponed")],
    27: [],
    28: [],
    29: [(1100 - 29, "executed")],
}
C: dict[int, Answers] = {
    **{k: [(2 * (k - 29), "preserved")] for k in range(30, 36)},
    36: [(3, "future_availability_not_ensured")],
    **{k: [] for k in range(37, 40)},
}
D: dict[int, Answers] = {
    **{k: [(4, "acknowledged"), (100 * (k - 39), "executed")] for k in range(40, 44)},
    **{k: [(4, "acknowledged"), (8, "recognised")] for k in (44, 45)},
    46: [(50, "executed")],
    **{k: [] for k in range(47, 50)},
}
A_INSTRUMENTS = ("Budapest Convention", "  Budapest Convention ", "Budapest \t Convention")


def _a(b: Builder, k: int) -> Envelope:
    basis = _basis(A_INSTRUMENTS[k % 3])
    return b.act("CN", "mla_request", k, case_ref=f"CASE-{k}", territorial_states=["TH"], **basis)


def _b(b: Builder, k: int) -> Envelope:
    return b.act(
        "FR",
        "mla_request",
        k,
        case_ref=f"CASE-{k}",
        territorial_states=["VN"],
        requested_state="VN",
        requested_authority="VN central authority",
        **_basis("UNTOC"),
    )


def _preservation(b: Builder, k: float, where: str, **fields: Any) -> Envelope:
    custodian = {"name": "Example Hosting Ltd", "kind": "service_provider", "state": where}
    return b.act(
        "CN",
        "preservation_request",
        k,
        case_ref=fields.pop("case_ref", f"CASE-{k}"),
        territorial_states=[where],
        custodian=custodian,
        expires_at=format_time(T0 + (k + 80 * 24) * H),
        **_basis("Budapest Convention"),
        **fields,
    )


def _d(b: Builder, k: int) -> Envelope:
    return b.act(
        "FR",
        "eio",
        k,
        case_ref=f"CASE-{k}",
        territorial_states=["TH"],
        issuing_state="FR",
        executing_state="TH",
    )


def _mla_answer(b: Builder, request: Envelope, state: str, hour: float, status: str) -> None:
    reason = {"reason": "the witness is abroad until May"} if status == "postponed" else {}
    b.answer(request, state, "mla_response", hour, status=status, **reason)


def _preservation_answer(b: Builder, request: Envelope, hour: float, status: str) -> None:
    if status == "preserved":
        until = {"preserved_until": format_time(T0 + (hour + 70 * 24) * H)}
        b.answer(request, "FR", "preservation_response", hour, status=status, **until)
    else:
        reason = {"reason": "the provider deletes logs after 7 days", "preserved_until": None}
        b.answer(request, "FR", "preservation_response", hour, status=status, **reason)


def build(b: Builder) -> dict[int, Envelope]:
    """The 50 requests (by hour) and their answers, committed."""
    requests: dict[int, Envelope] = {}
    for k, answers in A.items():
        requests[k] = _a(b, k)
        for after, status in answers:
            _mla_answer(b, requests[k], "TH", k + after, status)
    for k, answers in B.items():
        requests[k] = _b(b, k)
        for after, status in answers:
            _mla_answer(b, requests[k], "VN", k + after, status)
    for k, answers in C.items():
        requests[k] = _preservation(b, k, "FR")
        for after, status in answers:
            _preservation_answer(b, requests[k], k + after, status)
    for k, answers in D.items():
        requests[k] = _d(b, k)
        for after, status in answers:
            b.answer(requests[k], "TH", "eio_response", k + after, status=status)
    _not_requests(b, requests)
    b.commit_all()
    return requests


def _not_requests(b: Builder, requests: dict[int, Envelope]) -> None:
    first = requests[30]
    _preservation(
        b, 300, "FR", case_ref=first.record["case_ref"], refs=[first.id], phase="extension"
    )
    _preservation(b, 301, "CN", case_ref="CASE-domestic")
    b.answer(requests[16], "TH", "sovereignty_response", 302, response="consented")
