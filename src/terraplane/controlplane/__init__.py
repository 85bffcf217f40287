"""The control plane for per-tenant infrastructure: tenants, environments, blueprints (and, on
top of them, deployments, rollouts and drift). Each module is one aggregate's use cases."""
