"""Pull-request automation: GitHub events in, runs, locks, comments and checks out."""
