"""Per-process resources of a worker: the store, coordinator and queue, the model cache, the contexts
pipelines write through, and where a job's items come from."""
