"""The executors ``search`` and ``run`` accept (``runner.make_executor`` builds each). Torch-free, so the
commands' --help lists them without loading torch."""

EXECUTORS = ("local", "dask", "inline")
