"""`delicaite cohort features` (being written)."""

from __future__ import annotations


def add_cohort_parser(cohort_sub) -> None:
    """Add the `features` sub-command to the `delicaite cohort` group."""
