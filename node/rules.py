"""The record types this node accepts and their type-specific shape rules.

Acts carry the common fields checked in ``ledger.records``; the act catalogue
(``ledger.acts``) adds per-type rules through ``TypeRegistry.register``.
Governance types take their field rule from their descriptor in
``node.governance.GOVERNANCE`` (the rules themselves are in
``node.govshapes``), so a new governance type is registered here without
touching this module.
"""

from __future__ import annotations

from ledger.acts import register_acts
from ledger.private import HEADER_TYPE, check_header, check_purge_shape, check_violation_shape
from ledger.records import TypeRegistry
from node.governance import GOVERNANCE


def build_registry() -> TypeRegistry:
    registry = TypeRegistry()
    # The act catalogue (ledger/acts.py) gives every act type its schema rule.
    register_acts(registry)
    # A private act's public header (ledger/private.py); its body is checked by a party.
    registry.register(HEADER_TYPE, check_header)
    registry.register("body_violation", check_violation_shape)
    registry.register("body_purge", check_purge_shape)
    for descriptor in GOVERNANCE.values():
        registry.register(descriptor.name, descriptor.shape)
    return registry
