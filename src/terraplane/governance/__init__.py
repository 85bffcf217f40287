"""Governance: API tokens and roles (and, later, policies, secrets, audit)."""
