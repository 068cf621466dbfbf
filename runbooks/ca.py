#!/usr/bin/env python3
"""Run the CA stage alone: the certificate authority under /opt/certs on the ops host (an existing one is adopted)."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks import ca

if __name__ == "__main__":
    sys.exit(main([ca.STAGE], runbook="ca", description=__doc__))
