#!/usr/bin/env python3
"""Run the Kubernetes stages alone: certificates and images on the ops host, binaries, control plane (one master
at a time), pod network and nodes on master_compute, then kubectl and the admin kubeconfig on the ops host.

The same as `groundwork run kubernetes`: options, exit codes and run folders alike."""

import sys

import _bootstrap  # noqa: F401 - puts the project on sys.path

from groundwork.commands import runbook

if __name__ == "__main__":
    sys.exit(runbook("kubernetes"))
