#!/usr/bin/env python3
"""Run host preparation alone: hostname, SELinux, firewalld, package repository, base tools, sysctl."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks import host_prep

if __name__ == "__main__":
    sys.exit(main([host_prep.STAGE], runbook="host_prep", description=__doc__))
