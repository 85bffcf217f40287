"""The HTTP API: FastAPI app factory, authentication, one router module per resource.

Handlers are thin: they parse input into typed values, call one use case, and shape the answer.
"""
