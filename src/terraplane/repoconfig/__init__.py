"""Repository configuration: `.terraplane.yml` (or an Atlantis `atlantis.yaml`) -> typed config,
with errors that name the file, the line and the problem."""
