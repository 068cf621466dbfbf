#!/usr/bin/env python3
"""Run the registry stage alone: the registry behind nginx at harbor.od.com on the ops host."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks import registry

if __name__ == "__main__":
    sys.exit(main([registry.STAGE], runbook="registry", description=__doc__))
