"""The Celery round trip through a real worker process and real Redis."""

from __future__ import annotations

from worker.celery_app import app as celery_app


def test_ping_through_a_real_worker(worker):
    from worker.dispatch import send_ping

    assert send_ping().get(timeout=20) == "pong"


def test_celery_configuration_is_json_and_late_ack(settings):
    conf = celery_app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert {q.name for q in conf.task_queues} == {"plan", "copy", "push"}
    assert (
        conf.broker_transport_options["visibility_timeout"]
        == conf.result_backend_transport_options["visibility_timeout"]
    )
    assert conf.result_backend.startswith("redis://")
