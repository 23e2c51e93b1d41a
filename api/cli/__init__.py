"""The ``comity`` command line: run a node, bootstrap and operate a consortium,
author and submit acts, and audit a chain (``comity verify``, ``comity watch``).

It sits beside the HTTP faces, above ``node/``: it wires a node to its servers
(``api.serve``) and talks to nodes over their public API.
"""
