#!/usr/bin/env python3
"""Run the etcd stages alone: the certificates from the CA on the ops host, then the members one at a time."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks import etcd

if __name__ == "__main__":
    sys.exit(main(etcd.STAGES, runbook="etcd", description=__doc__))
