"""``python -m netwatch`` is the ``netwatch`` command."""

from netwatch.cli import main

main()
