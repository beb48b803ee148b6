"""`make run` (`ferry run`): bootstrap, then the web server and a Celery worker until Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config import envfile

#: What `make run` chooses for this checkout, unless its environment says otherwise; written to
#: the checkout's settings file, so every process of the checkout makes the same choice.
RUN_DEFAULTS = {"FERRY_HOST_QUEUES": "false"}


class Command(BaseCommand):
    help = "Run Ferry on one machine: web server and a Celery worker (with its scheduler)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("FERRY_BIND", "127.0.0.1:8000"))

    def handle(self, *args, bind, **options):
        call_command("ferry_bootstrap")
        env = dict(os.environ)
        # FERRY_HOST_QUEUES=false (the default here): one worker on this machine serves every host,
        # so every host task shares the default queue. The choice comes from this command's own
        # environment (not from the settings file, which it rewrites) and holds for every process
        # of this checkout.
        chosen = {
            name: os.environ[name] if name not in settings.FERRY_ENV_FILE_KEYS and name in os.environ else default
            for name, default in RUN_DEFAULTS.items()
        }
        envfile.update(settings.FERRY_ENV_FILE, chosen)
        env |= chosen
        self.stdout.write(
            f"Settings for every process of this checkout: {settings.FERRY_ENV_FILE} ("
            + ", ".join(f"{k}={v}" for k, v in chosen.items())
            + ")"
        )
        # FERRY_HOST_QUEUES=false: the worker is also the agent of every host (config.embedded_agent,
        # in-process through the agent API's services). true: it runs only Ferry's own tasks, and
        # each host's queue is served by that host's ferry-agent alone.
        host_queues = chosen["FERRY_HOST_QUEUES"].strip().lower() in {"1", "true", "yes", "on"}
        worker_app = "config" if host_queues else "config.embedded_agent"
        bin_dir = os.path.dirname(sys.executable)
        gunicorn_conf = settings.BASE_DIR / "contrib" / "gunicorn.conf.py"
        processes = [
            subprocess.Popen(
                [f"{bin_dir}/gunicorn", "--config", str(gunicorn_conf)],
                env=env
                | {
                    "FERRY_BIND": bind,
                    "FERRY_LOG_SERVICE": "web",
                    "FERRY_GUNICORN_CONTROL_SOCKET": str(settings.VAR_DIR / "gunicorn.ctl"),
                    "PROMETHEUS_MULTIPROC_DIR": str(settings.VAR_DIR / "prometheus"),
                },
                start_new_session=True,
            ),
            subprocess.Popen(
                [
                    f"{bin_dir}/celery",
                    "-A",
                    worker_app,
                    "worker",
                    "--beat",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                    "--queues",
                    settings.CELERY_TASK_DEFAULT_QUEUE,
                    "--schedule",
                    str(settings.VAR_DIR / "celerybeat-schedule"),
                    "--hostname",
                    f"ferry.{os.getpid()}@%h",
                ],
                env=env | {"FERRY_LOG_SERVICE": "worker"},
                start_new_session=True,
            ),
        ]
        self.stdout.write(self.style.SUCCESS(f"Ferry is running: http://{bind}/  (admin: http://{bind}/admin/)"))
        self.stdout.write("Press Ctrl-C to stop.")
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(p.poll() is None for p in processes):
                time.sleep(0.5)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for process in processes:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
        failed = [p for p in processes if p.returncode not in (0, -signal.SIGTERM, None)]
        self.stdout.write("Ferry stopped.")
        if failed and not stopping:
            raise SystemExit(1)
