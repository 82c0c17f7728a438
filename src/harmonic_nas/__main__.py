"""``python -m harmonic_nas`` is the same as the ``harmonic-nas`` command."""

from harmonic_nas.cli import main

main()
