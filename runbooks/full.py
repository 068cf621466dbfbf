#!/usr/bin/env python3
"""Run every stage in pipeline order: proxy hosts, then the ops host, then master_compute hosts.

The same as `groundwork run`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("full"))
