#!/usr/bin/env python3
"""Restore every etcd member from a snapshot kept on the ops host (runbooks/etcd_backup.py), after checking its
SHA-256: each member is stopped, its data directory kept aside as DATA_DIR.before-SNAPSHOT, restored, and the
members start again as a new cluster holding the snapshot's keys. Everything written after the snapshot is
lost, which is why --confirm is required.

The same as `groundwork etcd-restore`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("etcd_restore"))
