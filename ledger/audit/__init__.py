"""Comity's auditor: verify a chain, a bundle or a record while trusting no node.

``chain`` checks headers, commit certificates, envelopes and the ledger log
block by block; ``gov`` replays the governance records that decide who may
sign what and who validates; ``bundle`` checks an offline proof bundle, ``case``
a whole-case bundle.

The package depends on the standard library, PyNaCl and three stdlib-only
modules of the bottom layer (``ledger.merkle``'s verifiers, ``ledger.errors``,
``ledger.quorum``) and on nothing else, so an auditor can read it alone; the
import contract (tests/unit/test_import_contract.py) enforces it in CI.
"""
