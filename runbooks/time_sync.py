#!/usr/bin/env python3
"""Run the time stages alone: chrony on the ops host serving time, then every other host following it.

The same as `groundwork run time_sync`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("time_sync"))
