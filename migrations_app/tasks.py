"""Celery tasks: thin interfaces that load ids and call the host agent's services."""

from celery import shared_task

from migrations_app.routing import host_queue


@shared_task(name="ferry.migrate", acks_late=True)
def migrate(job_id: str) -> None:
    from migrations_app.agent import migration_run

    migration_run(job_id=job_id)


def enqueue_migration(job) -> None:
    migrate.apply_async(args=[str(job.pk)], queue=host_queue(job.source_host_id))
