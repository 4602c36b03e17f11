"""The job engine: planning, shards, finalising. Shared by the Celery tasks and ``fovea run``."""
