"""Ferry's Celery application (framework level, so that every layer may send a task). Host tasks go
to a queue per host (see core.routing). `celery -A config` finds it through config.celery."""

import os

from celery import Celery

from ferry_common import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Ferry's log lines (FERRY_LOG_FORMAT), with the request and job ids a task message carries.
logs.connect_celery()

app = Celery("ferry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
