"""The paper's experiments as commands: one module per runner (``dasjax table1`` runs
:mod:`dasjax.runners.table1`), their shared machinery in :mod:`dasjax.runners.common`, and the
time estimate of a planned run in :mod:`dasjax.runners.estimate`.  Each runner's ``main(argv)``
parses the same options as its command; ``experiments/run_<name>.py`` in the repository wraps it."""
