"""Pure types and rules. Imports only the standard library and pydantic; does no I/O."""
