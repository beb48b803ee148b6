"""`make run`: migrate, bootstrap, then the web server and a Celery worker until Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run Ferry on one machine: web server and a Celery worker (with its scheduler)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("FERRY_BIND", "127.0.0.1:8000"))

    def handle(self, *args, bind, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database ready: migrations applied, built-in policies and levels loaded.")
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("ferry_bootstrap")
        env = dict(os.environ)
        # One worker on this machine serves every host, so all host tasks share the default queue.
        env.setdefault("FERRY_HOST_QUEUES", "false")
        bin_dir = os.path.dirname(sys.executable)
        processes = [
            subprocess.Popen(
                [
                    f"{bin_dir}/gunicorn",
                    "config.wsgi",
                    "--bind",
                    bind,
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--access-logfile",
                    "-",
                ],
                env=env,
                start_new_session=True,
            ),
            subprocess.Popen(
                [
                    f"{bin_dir}/celery",
                    "-A",
                    "config",
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
                ],
                env=env,
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
