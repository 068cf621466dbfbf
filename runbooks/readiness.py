#!/usr/bin/env python3
"""Check every master_compute host as kubeadm's preflight would, with a "ready for kubeadm" verdict per host.

The same as `groundwork readiness`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("readiness"))
