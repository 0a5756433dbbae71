"""The sync pipeline's domain: planning a task, copying one item, coordination in Redis.

Celery glue lives in worker/tasks.py; this package only uses PostgreSQL, Redis
and the registry client.
"""
