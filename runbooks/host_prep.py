#!/usr/bin/env python3
"""Run host preparation alone: hostname, SELinux, firewalld, package repository, base tools, sysctl.

The same as `groundwork run host_prep`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("host_prep"))
