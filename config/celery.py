"""`celery -A config`: Ferry's Celery application, defined in core.celery."""

from core.celery import app

__all__ = ["app"]
