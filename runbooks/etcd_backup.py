#!/usr/bin/env python3
"""Back up the etcd cluster: a snapshot from the first healthy member, checked with `snapshot status`, kept on
the ops host under etcd.backup_dir as snapshot-<UTC time>.db with its .sha256 (the newest etcd.backups_kept).

The same as `groundwork etcd-backup`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("etcd_backup"))
