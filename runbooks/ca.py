#!/usr/bin/env python3
"""Run the CA stage alone: the certificate authority under /opt/certs on the ops host (an existing one is adopted).

The same as `groundwork run ca`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("ca"))
