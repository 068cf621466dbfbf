#!/usr/bin/env python3
"""Put an archive's CA, zones, htpasswd and etcd snapshot back, then run every stage.

The same as `groundwork restore`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("restore"))
