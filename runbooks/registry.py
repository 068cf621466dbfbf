#!/usr/bin/env python3
"""Run the registry stage alone: the registry behind nginx at harbor.od.com on the ops host.

The same as `groundwork run registry`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("registry"))
