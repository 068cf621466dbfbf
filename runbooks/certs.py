#!/usr/bin/env python3
"""List and check every certificate groundwork manages: days left, issuer, the CA host's copy.

The same as `groundwork certs`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("certs"))
