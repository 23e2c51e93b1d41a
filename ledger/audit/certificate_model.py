"""The plain-data model of one case for the judge's certificate (docs/AUDIT.md).

Theory of operation: a certificate is rendered from a ``CaseModel`` and from
nothing else. A model is built from one of two sources, each its own
function: ``api.certificate.source.model_from_node`` reads a node's HTTP
views; a loader of a verified case bundle (``model_from_bundle``) fills the
same fields from the bundle it has checked. The renderer never asks where a
field came from: what was checked, and whether it passed, travels in
``checks``, so a model built without verification says so on its face.

Every string here came from a chain, a node or a file and is hostile: the
renderer escapes it, and ``bounded`` cuts the lists to the caps below so a case
of a million records cannot exhaust the renderer (the cut is recorded in
``omitted`` and printed).

Pure: standard library only, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar

T = TypeVar("T")

# Limits on what one certificate renders (a PDF of more is unreadable anyway).
TIMELINE_ENTRIES_MAX = 500
CUSTODY_CHAINS_MAX = 100
CUSTODY_EVENTS_MAX = 200
PARTIES_MAX = 64
ANSWERS_MAX = 500
TEXT_CHARS_MAX = 2000

CheckStatus = Literal["passed", "failed", "not_run"]
CHECK_STATUSES: tuple[CheckStatus, ...] = ("passed", "failed", "not_run")

# The checks a verified case bundle reports, in the order a certificate lists them.
CHECK_NAMES = (
    "genesis_pinned",
    "validator_set_chain",
    "commit_certificates",
    "inclusion_proofs",
    "signatures",
)


@dataclass(frozen=True)
class Check:
    """One verification step: ``name`` (one of CHECK_NAMES), its status, a detail line."""

    name: str
    status: CheckStatus
    detail: str = ""


@dataclass(frozen=True)
class Party:
    """A state involved in the case (actor or territorial state), with its member name."""

    state: str
    name: str


@dataclass(frozen=True)
class Authorisation:
    level: str | None = None
    reference: str | None = None
    approved_by: str | None = None


@dataclass(frozen=True)
class Answer:
    """An answer naming an act: sovereignty response or lifecycle answer (ACTS.md §4, §16)."""

    record_id: str
    type: str
    state: str
    answer: str | None
    final: bool
    occurred_at: str
    height: int | None
    ground: str | None = None
    reason: str | None = None
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimelineEntry:
    """One committed record of the case, in commit order (ACTS.md §7).

    ``private_header_only``: the source could not read the body (a private act
    of which the caller's state is not a party), so only its header is shown.
    """

    record_id: str
    occurred_at: str
    commit_time: str | None
    height: int | None
    actor_state: str
    agency: str
    type: str
    territorial_states: tuple[str, ...]
    instrument: str | None = None
    article: str | None = None
    authorisation: Authorisation | None = None
    status: str | None = None
    answers: tuple[Answer, ...] = ()
    private_header_only: bool = False


@dataclass(frozen=True)
class SovereigntyAnswer:
    """A territorial state's latest sovereignty answer to one act (``pending`` if none)."""

    act_id: str
    act_type: str
    state: str
    answer: str


@dataclass(frozen=True)
class CustodyEvent:
    record_id: str
    action: str
    actor_state: str
    occurred_at: str
    to_state: str | None = None
    to_agency: str | None = None
    location: str | None = None
    purpose: str | None = None


@dataclass(frozen=True)
class CustodyChain:
    """The custody chain of one evidence hash under one introducing act (ACTS.md §5)."""

    sha256: str
    introducing_act: str
    introduced_by: str
    status: str
    holder: str | None
    events: tuple[CustodyEvent, ...]
    anomalies: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseModel:
    """Everything one certificate shows, and nothing it does not."""

    case_ref: str
    generated_at: str
    chain_id: str
    genesis_hash: str
    bundle_sha256: str
    source: str  # "node URL" or "bundle", as printed
    checks: tuple[Check, ...]
    parties: tuple[Party, ...]
    timeline: tuple[TimelineEntry, ...]
    sovereignty: tuple[SovereigntyAnswer, ...]
    custody: tuple[CustodyChain, ...]
    omitted: dict[str, int] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        """True only when every named check ran and passed."""
        done = {c.name: c.status for c in self.checks}
        return all(done.get(name) == "passed" for name in CHECK_NAMES)

    @property
    def short_hash(self) -> str:
        """The bundle hash as printed on every page: its first 16 hex digits, grouped."""
        head = self.bundle_sha256[:16]
        return " ".join(head[i : i + 4] for i in range(0, len(head), 4))


def clip(text: str | None) -> str | None:
    """A hostile string cut to TEXT_CHARS_MAX characters (None stays None)."""
    if text is None:
        return None
    return text if len(text) <= TEXT_CHARS_MAX else text[: TEXT_CHARS_MAX - 1] + "…"


def bounded(model: CaseModel) -> CaseModel:
    """``model`` with every list cut to its cap; what was cut is counted in ``omitted``."""
    omitted = dict(model.omitted)

    def cut(name: str, items: tuple[T, ...], cap: int) -> tuple[T, ...]:
        if len(items) > cap:
            omitted[name] = omitted.get(name, 0) + len(items) - cap
        return items[:cap]

    chains = tuple(
        replace(c, events=cut("custody_events", c.events, CUSTODY_EVENTS_MAX))
        for c in cut("custody_chains", model.custody, CUSTODY_CHAINS_MAX)
    )
    timeline = tuple(
        replace(e, answers=cut("answers", e.answers, ANSWERS_MAX))
        for e in cut("timeline", model.timeline, TIMELINE_ENTRIES_MAX)
    )
    return replace(
        model,
        parties=cut("parties", model.parties, PARTIES_MAX),
        timeline=timeline,
        sovereignty=cut("sovereignty", model.sovereignty, ANSWERS_MAX),
        custody=chains,
        omitted=omitted,
    )
