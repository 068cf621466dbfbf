"""groundwork: builds, checks and documents the infrastructure under a self-built Kubernetes platform."""

__version__ = "0.1.0"
