#!/usr/bin/env python3
"""Issue a certificate from the CA on the ops host, as `cfssl gencert -profile=PROFILE` does: NAME.pem and
NAME-key.pem (0600) under /opt/certs. A current certificate with the same CN, SANs and profile is kept; one of
that name issued with other settings is never written over, and no NAME may land on the CA's own files."""

import argparse
import ipaddress
import re
import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from groundwork.pki import PROFILE_USAGES
from tasks import ca


def file_stem(value: str) -> str:
    """NAME becomes NAME.pem beside the CA: a path of its own (a /, a leading dot) would put it elsewhere."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
        raise argparse.ArgumentTypeError(f"{value!r}: a file name stem of letters, digits and . _ - (no /)")
    if ca.lands_on_ca(value):
        raise argparse.ArgumentTypeError(f"{value!r}: its files would be written over the CA's own "
                                         f"{' and '.join(ca.lands_on_ca(value))}; choose another name")
    return value


def san(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    label = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    if not re.fullmatch(rf"(\*\.)?{label}(\.{label})*", value):
        raise argparse.ArgumentTypeError(f"{value!r}: an IP address or a DNS name")
    return value


def common_name(value: str) -> str:
    if not value or len(value) > 64 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise argparse.ArgumentTypeError(f"{value!r}: one line of 1 to 64 characters")
    return value


def arguments(parser):
    parser.add_argument("name", type=file_stem, help="file name stem: NAME.pem, NAME-key.pem")
    parser.add_argument("--profile", required=True, choices=sorted(PROFILE_USAGES), help="signing profile")
    parser.add_argument("--cn", type=common_name, help="common name (default: NAME)")
    parser.add_argument("--san", type=san, action="append", default=[], help="host name or IP address; repeatable")


if __name__ == "__main__":
    sys.exit(main(lambda a: [ca.issue_stage(a.name, a.profile, a.cn or a.name, a.san)], runbook="issue_cert",
                  description=__doc__, add_arguments=arguments))
