"""Negative controls for the classes whose bug is not a C finding (tests/wholesim/controls.py).

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
        found = [v for v in result.violations if v[0] == control.expect]
        if not found:
            # Another symptom of the bug only, on a seed that did not show this one.
            assert result.violation is None or result.violation[0] in control.symptoms, (
                seed,
                result.violation,
            )
            continue
        assert control.detail in found[0][1], (seed, found[0])
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
