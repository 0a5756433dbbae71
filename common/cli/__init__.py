"""The ``ferry`` command line: the only code in ``common`` that imports click."""


def main() -> None:
    """Entry point of the ``ferry`` script (imported lazily so ``python -m common.cli.copy``
    does not load its own module twice)."""
    from common.cli.main import main as run

    run()
