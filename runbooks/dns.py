#!/usr/bin/env python3
"""Run the DNS stage alone: bind9 primary and secondaries on the proxy hosts, then every host's resolver.

The same as `groundwork run dns`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("dns"))
