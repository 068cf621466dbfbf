#!/usr/bin/env python3
"""Run the docker stage alone: docker with the seeds' daemon.json on the master_compute and ops hosts.

The same as `groundwork run docker`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("docker"))
