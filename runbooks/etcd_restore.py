#!/usr/bin/env python3
"""Restore every etcd member from a snapshot kept on the ops host (runbooks/etcd_backup.py), after checking its
SHA-256: each member is stopped, its data directory kept aside as DATA_DIR.before-SNAPSHOT, restored, and the
members start again as a new cluster holding the snapshot's keys. Everything written after the snapshot is
lost, which is why --confirm is required."""

import argparse
import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks import etcd, etcd_backup


def snapshot_id(value: str) -> str:
    if not etcd_backup.SNAPSHOT_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r}: a snapshot id as etcd_backup.py names it "
                                         "(snapshot-YYYYMMDDTHHMMSSZ)")
    return value


def arguments(parser):
    parser.add_argument("--snapshot", required=True, type=snapshot_id, metavar="ID",
                        help="the snapshot to restore (snapshot-YYYYMMDDTHHMMSSZ, from etcd_backup.py's report)")
    parser.add_argument("--confirm", action="store_true", required=True,
                        help="required: every member's data is replaced by the snapshot's")


if __name__ == "__main__":
    sys.exit(main(lambda a: [etcd.CERTS, etcd_backup.fetch_stage(a.snapshot), etcd_backup.RESTORE, etcd.MEMBERS],
                  runbook="etcd_restore", description=__doc__, add_arguments=arguments))
