"""The job lifecycle, knowing no kind: start and plan a job, run its shards or its training steps,
finalise it. Shared by the Celery tasks and ``fovea run``; each kind is asked through its plug-in."""
