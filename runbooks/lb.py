#!/usr/bin/env python3
"""Run the L4 proxy stages alone: nginx's stream proxy to the apiservers, then keepalived's VIP, on the proxy hosts."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks import lb

if __name__ == "__main__":
    sys.exit(main(lb.STAGES, runbook="lb", description=__doc__))
