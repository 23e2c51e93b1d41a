"""Fuzz every API operation with schemathesis, against a real node's own OpenAPI document.

One node process (a one-state devnet, so it commits alone) on 127.0.0.1.
Hypothesis generates valid and invalid inputs from the schema; every answer
must be a non-5xx, of a status the operation documents, with a body that
matches the documented schema. ``COMITY_FUZZ_EXAMPLES`` raises the bound
(scripts/test keeps it small: the whole file runs in well under a minute).
SSE (an endless stream) is left to tests/integration/test_api_events.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from node.tokens import create_token
from tests.procnet import ProcNet

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("COMITY_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
Operation = schemathesis.APIOperation[Any, Any, Any, Any]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(API URL, an operator token) of a one-node devnet: every endpoint is reachable."""
    net = ProcNet(tmp_path_factory.mktemp("fuzz") / "net", nodes=1)
    folder = net.root / net.states[0]
    with (folder / "node.toml").open("a") as config:
        config.write("\n[limits]\nlong_poll_max_s = 1\n")
    _, secret = create_token(folder / "data", "operator", "fuzz")
    net.start()
    try:
        yield net.urls[net.states[0]], secret
    finally:
        net.stop_all()
        log = net.log(net.states[0])
        assert "Traceback" not in log, log[-4000:]


def _operations(node_url: str) -> list[Operation]:
    schema = schemathesis.openapi.from_url(f"{node_url}/openapi.json")
    operations: list[Operation] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"the node's own schema has a bad operation: {result.err()}")
        operations.append(result.ok())
    return [op for op in operations if op.path != "/v1/events"]


def _fuzz(operation: Operation, node_url: str, token: str) -> list[str]:
    failures: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: schemathesis.Case[Any]) -> None:
        try:
            case.call_and_validate(
                base_url=node_url,
                checks=CHECKS,
                timeout=15,
                headers={"Authorization": f"Bearer {token}"},
            )
        except (Exception, BaseExceptionGroup) as exc:  # collect, then fail once
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")

    run()
    return failures


def test_no_server_errors_and_every_response_matches_its_schema(node: tuple[str, str]) -> None:
    node_url, token = node
    operations = _operations(node_url)
    assert len(operations) >= 20, [op.path for op in operations]
    failures: list[str] = []
    for operation in operations:
        failures += _fuzz(operation, node_url, token)[:1]
    assert failures == [], "\n\n".join(failures)
