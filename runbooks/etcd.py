#!/usr/bin/env python3
"""Run the etcd stages alone: the certificates from the CA on the ops host, then the members one at a time.

The same as `groundwork run etcd`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("etcd"))
