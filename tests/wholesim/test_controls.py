"""Negative controls for the crash, twins and restore classes (tests/wholesim/controls.py).

Each puts a bug back for one test; the campaign of its class must find the
violation it names within its seeds, and the seed that found it must hold
with the node (and disk) as they are: so the control shows that this very
bug is what the campaign catches.
"""

from __future__ import annotations

import pytest

from tests.wholesim.controls import CONTROLS
from tests.wholesim.scenario import run_plan


@pytest.mark.parametrize("name", sorted(CONTROLS))
def test_control_campaign_finds_the_bug(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    control = CONTROLS[name]
    control.patch(monkeypatch)
    for seed in control.seeds:
        plan = control.plan(seed, bug=True)
        if not control.relevant(plan):
            continue
        result = run_plan(plan)
        if result.violation is None:
            continue
        assert result.violation[0] == control.expect, (seed, result.violation)
        assert control.detail in result.violation[1], (seed, result.violation)
        monkeypatch.undo()
        fixed = run_plan(control.plan(seed, bug=False))
        assert fixed.ok, (
            f"seed={seed} fails without the bug too: {fixed.violation}\n{fixed.plan.describe()}"
        )
        return
    pytest.fail(
        f"{name} ({control.bug}): no {control.expect} in seeds "
        f"{control.seeds.start}..{control.seeds.stop - 1}"
    )
