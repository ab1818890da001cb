"""Benchmarks of optiinfra_store against raw asyncpg (same SQL) and the SQLAlchemy ORM.

    python -m benchmarks --quick          # every operation, small sizes (about a minute)
    python -m benchmarks --json out.json  # the full run
    python -m benchmarks scale            # history at 10k / 100k / 1M executions
    python -m benchmarks profile          # where the store's time goes on `get`

See benchmarks/RESULTS.md for numbers and README.md ("Benchmarks") for the options.
"""
