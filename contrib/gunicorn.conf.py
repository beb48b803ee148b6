"""Gunicorn's configuration for Ferry's web server, used by `make run` and by the systemd unit
contrib/systemd/ferry-web.service (`gunicorn -c contrib/gunicorn.conf.py`). Everything that
differs between machines comes from the environment:

    FERRY_BIND                 where to listen, comma-separated (127.0.0.1:8000)
    FERRY_WEB_WORKERS          worker processes (2)
    FERRY_WEB_THREADS          threads per worker (4)
    FERRY_GUNICORN_CONTROL_SOCKET
                               gunicornc's control socket (<FERRY_VAR_DIR>/gunicorn.ctl: one per
                               Ferry, never the per-user default that two instances would share)
    FERRY_FORWARDED_ALLOW_IPS  proxies whose X-Forwarded-* headers gunicorn trusts (127.0.0.1,::1)
    PROMETHEUS_MULTIPROC_DIR   where the workers keep their request metrics, so that any of them
                               can answer GET /metrics for all (<FERRY_VAR_DIR>/prometheus)
"""

import os
import shutil
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))

from ferry_common import logs  # noqa: E402  (the checkout's own package, after the path above)

VAR_DIR = Path(os.environ.get("FERRY_VAR_DIR") or CHECKOUT / "var")

wsgi_app = "config.wsgi:application"
chdir = str(CHECKOUT)
bind = [item.strip() for item in os.environ.get("FERRY_BIND", "127.0.0.1:8000").split(",") if item.strip()]
workers = int(os.environ.get("FERRY_WEB_WORKERS", "2"))
threads = int(os.environ.get("FERRY_WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 60
graceful_timeout = 30
forwarded_allow_ips = os.environ.get("FERRY_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Ferry logs each request itself, with its request id (ops.middleware): no access log here. Gunicorn's
# own lines go through the same formatter as Ferry's (FERRY_LOG_FORMAT=json for JSON).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("FERRY_LOG_LEVEL", "info").lower()
logconfig_dict = logs.dict_config(service=os.environ.get("FERRY_LOG_SERVICE") or "web")
logconfig_dict["loggers"] = {
    name: {"handlers": ["console"], "level": loglevel.upper(), "propagate": False}
    for name in ("gunicorn.error", "gunicorn.access")
}

control_socket = os.environ.get("FERRY_GUNICORN_CONTROL_SOCKET") or str(VAR_DIR / "gunicorn.ctl")
# A Unix socket's path is at most 107 bytes: a longer one (a deep checkout) gets no control socket.
control_socket_disable = len(os.fsencode(control_socket)) > 100

PROMETHEUS_DIR = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus")))


def on_starting(server):
    """The previous run's metrics files belong to processes that are gone."""
    shutil.rmtree(PROMETHEUS_DIR, ignore_errors=True)
    PROMETHEUS_DIR.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
