#!/usr/bin/env python3
"""Run the DNS stage alone: bind9 primary and secondaries on the proxy hosts, then every host's resolver."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks import dns

if __name__ == "__main__":
    sys.exit(main(dns.STAGES, runbook="dns", description=__doc__))
