#!/usr/bin/env python3
"""Run the Kubernetes stages alone: certificates and images on the ops host, binaries, control plane (one master
at a time), pod network and nodes on master_compute, then kubectl and the admin kubeconfig on the ops host."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.cli import main
from tasks.pipeline import KUBERNETES

if __name__ == "__main__":
    sys.exit(main(KUBERNETES, runbook="kubernetes", description=__doc__))
