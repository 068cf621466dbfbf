#!/usr/bin/env python3
"""Replace the certificate authority on the ops host: the old ca.pem, ca-key.pem and ca.csr move to
/opt/certs/replaced-<UTC time>/, then a new CA is made. Every certificate the old CA signed stops being trusted
by anything that trusts only the new one. Needs --confirm-replace-ca (see the plan first with --dry-run)."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks import ca


def arguments(parser):
    parser.add_argument("--confirm-replace-ca", action="store_true", help="yes, replace the CA")


def stages(args):
    if not (args.confirm_replace_ca or args.dry_run):
        sys.exit("replace_ca.py: replacing the CA needs --confirm-replace-ca (or look first with --dry-run)")
    return [ca.REPLACE]


if __name__ == "__main__":
    sys.exit(main(stages, runbook="replace_ca", description=__doc__, add_arguments=arguments))
