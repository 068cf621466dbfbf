#!/usr/bin/env python3
"""Take out of the platform a host taken out of the inventory: etcd, Kubernetes, DNS, the proxy.

The same as `groundwork remove-host`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("remove_host"))
