#!/usr/bin/env python3
"""Run the docker stage alone: docker with the seeds' daemon.json on the master_compute and ops hosts."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks import docker

if __name__ == "__main__":
    sys.exit(main([docker.STAGE], runbook="docker", description=__doc__))
