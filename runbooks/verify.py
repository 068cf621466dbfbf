#!/usr/bin/env python3
"""Run the verification pass alone: every check on every targeted host, and the report for the change board.

The same as `groundwork verify`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("verify"))
