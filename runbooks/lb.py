#!/usr/bin/env python3
"""Run the L4 proxy stages alone: nginx's stream proxy to the apiservers, then keepalived's VIP, on the proxy hosts.

The same as `groundwork run lb`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("lb"))
