"""``python -m common.cli``: the same as the ``ferry`` command."""

from common.cli.main import main

main()
