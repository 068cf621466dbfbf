#!/usr/bin/env python3
"""Back up the etcd cluster: a snapshot from the first healthy member, checked with `snapshot status`, kept on
the ops host under etcd.backup_dir as snapshot-<UTC time>.db with its .sha256 (the newest etcd.backups_kept)."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks import etcd_backup

if __name__ == "__main__":
    sys.exit(main([etcd_backup.SAVE, etcd_backup.STORE], runbook="etcd_backup", description=__doc__))
