#!/usr/bin/env python3
"""Replace the certificate authority on the ops host: the old ca.pem, ca-key.pem and ca.csr move to
/opt/certs/replaced-<UTC time>/, then a new CA is made. Every certificate the old CA signed stops being trusted
by anything that trusts only the new one. Needs --confirm-replace-ca (see the plan first with --dry-run).

The same as `groundwork replace-ca`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("replace_ca"))
