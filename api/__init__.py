"""Comity's faces: the HTTP API for investigators and auditors (FastAPI), and the
``comity`` command line (``api.cli``). Everything here sits above ``node/``."""
