"""Pure-PyTorch pipelines, one module per job kind, looked up through ``registry``.

A pipeline gets ``(spec, ctx)`` and writes only through ``ctx``; it never imports celery, boto3,
redis or fastapi, so it runs in a plain Python process on a GPU machine with no broker or store.
"""
