"""GPU workers: Celery glue (celery_app, tasks), the job engine, and pure-PyTorch pipelines."""
