"""The engine: terraform/tofu as subprocesses (argument lists, never a shell).

Output streams to a sink as it arrives, with secrets redacted; timeouts and cancellation send
SIGINT first (Terraform stops cleanly and releases its state lock), then SIGKILL after a grace
period. Binaries come from PATH or from a release mirror with checksum verification; `init`
runs under a file lock on the shared plugin cache.
"""
