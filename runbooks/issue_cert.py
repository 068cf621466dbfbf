#!/usr/bin/env python3
"""Issue a certificate from the CA on the ops host, as `cfssl gencert -profile=PROFILE` does: NAME.pem and
NAME-key.pem (0600) under /opt/certs. A current certificate with the same CN, SANs and profile is kept; one of
that name issued with other settings is never written over, and no NAME may land on the CA's own files.

The same as `groundwork issue-cert`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("issue_cert"))
