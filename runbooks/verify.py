#!/usr/bin/env python3
"""Run the verification pass alone: every check on every targeted host, and the report for the change board."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks.pipeline import PIPELINE

if __name__ == "__main__":
    sys.exit(main([], runbook="verify", description=__doc__, all_checks=True,
                  secrets=frozenset().union(*(s.secrets for s in PIPELINE))))
