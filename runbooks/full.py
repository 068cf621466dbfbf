#!/usr/bin/env python3
"""Run every stage in pipeline order: proxy hosts, then the ops host, then master_compute hosts."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks.pipeline import PIPELINE

if __name__ == "__main__":
    sys.exit(main(PIPELINE, runbook="full", description=__doc__))
