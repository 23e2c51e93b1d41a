"""``python -m api.cli``: the same as the ``comity`` command."""

from api.cli.main import main

main()
