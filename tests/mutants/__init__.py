"""Mutation testing: realistic bugs planted in a temporary copy of keeldb, one at a time,
and the checks that must catch them — ``keeldb chaos`` with its default fault mix and the
project's crash and model tests.

    python -m tests.mutants                  # every mutant: chaos and own tests, then a table
    python -m tests.mutants --only no-log-fsync,mvcc-off-by-one --skip-chaos
    python -m tests.mutants --list           # the mutants and what each plants

``catalog.py`` holds the mutants, ``apply.py`` makes a mutated copy (never touching the
checkout or the installed package), ``run.py`` runs the checks and prints the table
(docs/chaos.md, "What it catches").
"""
