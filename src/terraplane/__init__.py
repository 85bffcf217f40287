"""Terraplane: an open-source control plane for infrastructure as code."""

__version__ = "0.1.0"
