"""The `terraplane` command line. Admin commands (db, token) talk to the database directly."""
