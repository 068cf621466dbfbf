#!/usr/bin/env python3
"""Check a reports folder long after its runs: every run folder's checksums and signature, and the hash chain
that links each run to the one before it. Names the first folder that was altered, removed or inserted.

The same as `groundwork audit`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("audit"))
