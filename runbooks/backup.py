#!/usr/bin/env python3
"""Back up what groundwork cannot rebuild into one encrypted archive on this machine.

The same as `groundwork backup`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("backup"))
