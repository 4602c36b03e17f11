"""The HTTP layer: FastAPI app, routes, auth, job submission. Never imports torch or the worker."""
