"""`ferry check`: is this Ferry ready to serve? A readable report for an operator.

Settings, the database (and whether its migrations are applied), the broker, and each host's
agent (when it last reported). Every line says OK, WARN or FAIL and, when not OK, what to do.
The exit status is 1 when anything FAILs, so a deployment script can stop on it.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core import checks as django_checks
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ops import health

OK, WARN, FAIL = "OK", "WARN", "FAIL"


class Command(BaseCommand):
    help = "Check Ferry's settings, database, broker and each host's agent, and report in plain words."

    def add_arguments(self, parser):
        parser.add_argument("--deploy", action="store_true", help="also run Django's deployment checks")

    def handle(self, *args, deploy=False, **options):
        self.counts = {OK: 0, WARN: 0, FAIL: 0}
        self.stdout.write(f"Ferry check: {settings.BASE_DIR}")
        self.settings_section(deploy)
        database_ok = self.database_section()
        self.broker_section()
        if database_ok:
            self.hosts_section()
        summary = f"{self.counts[FAIL]} failed, {self.counts[WARN]} warnings, {self.counts[OK]} ok"
        self.stdout.write("")
        if self.counts[FAIL]:
            self.stdout.write(self.style.ERROR(f"Not ready: {summary}."))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(f"Ready: {summary}."))

    def line(self, level: str, text: str, advice: str = "") -> None:
        self.counts[level] += 1
        style = {OK: self.style.SUCCESS, WARN: self.style.WARNING, FAIL: self.style.ERROR}[level]
        self.stdout.write(f"  {style(level.ljust(4))}  {text}" + (f"\n          -> {advice}" if advice else ""))

    def section(self, title: str) -> None:
        self.stdout.write(f"\n{title}")

    def settings_section(self, deploy: bool) -> None:
        self.section("Settings")
        if os.environ.get("DJANGO_SECRET_KEY"):
            self.line(OK, "secret key from DJANGO_SECRET_KEY")
        else:
            self.line(
                WARN,
                f"secret key generated into {settings.VAR_DIR / 'secret_key'}",
                "fine on one machine; in production set DJANGO_SECRET_KEY, the same for the web server and worker",
            )
        if settings.DEBUG:
            self.line(WARN, "DJANGO_DEBUG is on", "never in production: error pages show settings and code")
        else:
            self.line(OK, "DEBUG off")
        self.line(OK, f"allowed host names: {', '.join(settings.ALLOWED_HOSTS)}")
        if settings.SECURE:
            self.line(OK, "FERRY_SECURE on: HTTPS-only cookies, HSTS, redirect to HTTPS")
        else:
            self.line(WARN, "FERRY_SECURE off: cookies may travel over plain HTTP", "behind HTTPS: FERRY_SECURE=true")
        if settings.FERRY_HOST_QUEUES:
            self.line(OK, "FERRY_HOST_QUEUES on: each host's tasks go to host.<id>, served by that host's agent")
        else:
            self.line(
                OK,
                "FERRY_HOST_QUEUES off: every host task goes to the queue "
                f"{settings.CELERY_TASK_DEFAULT_QUEUE!r}, whose worker acts for every host (one machine)",
            )
        if settings.FERRY_ENV_FILE_KEYS:
            keys = ", ".join(sorted(settings.FERRY_ENV_FILE_KEYS))
            self.line(OK, f"from the checkout's settings file {settings.FERRY_ENV_FILE}: {keys}")
        issues = [
            issue for issue in django_checks.run_checks(include_deployment_checks=deploy) if not issue.is_silenced()
        ]
        for issue in issues:
            level = FAIL if issue.level >= django_checks.ERROR else WARN
            self.line(level, f"{issue.id}: {issue.msg}", issue.hint or "")
        if not issues:
            self.line(OK, "Django's system checks" + (" (with the deployment checks)" if deploy else "") + ": no issue")

    def database_section(self) -> bool:
        self.section("Database")
        probe = health.database()
        db = connection.settings_dict
        where = db["NAME"] if probe.detail == "sqlite" or not db.get("HOST") else f"{db['HOST']}/{db['NAME']}"
        if not probe.ok:
            self.line(FAIL, f"{where}: does not answer ({probe.detail})", "check DATABASE_URL and that the server runs")
            return False
        self.line(OK, f"{probe.detail} at {where} answers in {probe.seconds * 1000:.0f} ms")
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in pending[:5])
            more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
            self.line(FAIL, f"{len(pending)} migrations not applied: {names}{more}", "run `ferry bootstrap`")
            return False
        self.line(OK, "every migration is applied")
        return True

    def broker_section(self) -> None:
        self.section("Broker")
        from core.celery import app

        with app.connection_for_write() as conn:
            where = conn.as_uri()  # the password masked
            if conn.transport_cls == "filesystem":
                folder = (conn.transport_options or {}).get("data_folder_out", "")
                where = f"the filesystem broker in {os.path.dirname(folder) or folder}"
        probe = health.broker()
        if probe.ok:
            self.line(OK, f"{where} answers in {probe.seconds * 1000:.0f} ms")
        else:
            self.line(FAIL, f"{where}: does not answer ({probe.detail})", "check CELERY_BROKER_URL and the broker")

    def agent_hint(self, name: str) -> str:
        from migrations_app.models import AgentToken

        if AgentToken.objects.filter(host__name=name).exists():
            return f"start its agent: ferry agent --host {name}"
        return f"it has no agent token yet: ferry agent_token {name}, then start its agent: ferry agent --host {name}"

    def hosts_section(self) -> None:
        reports = health.agent_reports()
        self.section(f"Hosts ({len(reports)})")
        if not reports:
            self.line(OK, "no host yet: add them on /hosts/ or with the API, then start each one's agent")
            return
        silent = health.silent_after().total_seconds()
        for report in reports:
            text = f"{report.name}: {report.status}, {report.summary} (queue {report.queue})"
            if report.status == "maintenance":
                self.line(OK, text)
            elif report.last_report_at is None:
                self.line(
                    WARN,
                    text,
                    self.agent_hint(report.name)
                    if settings.FERRY_HOST_QUEUES
                    else "start Ferry's worker (`make run` starts one)",
                )
            elif report.silent:
                self.line(
                    WARN,
                    text,
                    f"its agent has been silent for more than {silent:.0f} s: is `ferry agent --host {report.name}` "
                    "running, and does it reach Ferry and the broker?",
                )
            else:
                self.line(OK, text)
