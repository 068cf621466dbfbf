#!/usr/bin/env python3
"""Issue a certificate from the CA on the ops host, as `cfssl gencert -profile=PROFILE` does: NAME.pem and
NAME-key.pem (0600) under /opt/certs. A current certificate with the same CN, SANs and profile is kept."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from groundwork.pki import PROFILE_USAGES
from tasks import ca


def arguments(parser):
    parser.add_argument("name", help="file name stem: NAME.pem, NAME-key.pem")
    parser.add_argument("--profile", required=True, help=f"signing profile ({', '.join(PROFILE_USAGES)})")
    parser.add_argument("--cn", help="common name (default: NAME)")
    parser.add_argument("--san", action="append", default=[], help="host name or IP address; repeatable")


if __name__ == "__main__":
    sys.exit(main(lambda a: [ca.issue_stage(a.name, a.profile, a.cn or a.name, a.san)], runbook="issue_cert",
                  description=__doc__, add_arguments=arguments))
