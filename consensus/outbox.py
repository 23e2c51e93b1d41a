"""The mutable collector behind one engine call; frozen into a ``Ready`` at the end."""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.messages import Equivocation, Proposal, Vote
from consensus.state import Commit, PersistedState, Ready, Timeout


@dataclass
class Outbox:
    send: list[Proposal | Vote] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)
    timeouts: list[Timeout] = field(default_factory=list)
    validate: list[str] = field(default_factory=list)
    evidence: list[Equivocation] = field(default_factory=list)
    need_proposal: tuple[int, int] | None = None
    behind: int | None = None

    def ready(self, persist: PersistedState | None) -> Ready:
        return Ready(
            persist=persist,
            send=tuple(self.send),
            commits=tuple(self.commits),
            timeouts=tuple(self.timeouts),
            validate=tuple(self.validate),
            need_proposal=self.need_proposal,
            evidence=tuple(self.evidence),
            behind=self.behind,
        )
