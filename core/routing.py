"""Which Celery queue serves a host: one queue per host, so a worker on each hypervisor serves its own."""

from django.conf import settings


def host_queue(host_id) -> str:
    if not settings.FERRY_HOST_QUEUES:
        return settings.CELERY_TASK_DEFAULT_QUEUE
    return f"host.{host_id}"
