"""The ``fovea`` command line: a client of the HTTP API, plus the embedded stack and in-process runs."""
