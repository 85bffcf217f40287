"""Runs: one plan, apply or destroy of one workspace.

`service` creates runs (and their job, in the same transaction) and reads them; `executor` is the
job handler that drives the engine, streams the log into `run_log_chunks` and records the result.
Run states change only through `domain.runs.transition_run`, here.
"""
