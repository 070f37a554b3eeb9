"""The HTTP transport: a Starlette app over the runtime."""
