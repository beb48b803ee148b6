"""Ferry settings. Everything that differs between machines comes from the environment.

Embedded defaults (no variable set): SQLite in var/, a filesystem Celery broker in var/broker/,
DEBUG off, a secret key generated once into var/secret_key. Production sets DJANGO_SECRET_KEY,
DATABASE_URL, CELERY_BROKER_URL and FERRY_SECURE=true (HTTPS-only cookies, HSTS, SSL redirect).
"""

import datetime
import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from config import envfile
from ferry_common import logs

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FERRY_VAR_DIR", BASE_DIR / "var"))
# The checkout's settings file (config/envfile.py): what `make run` and `make lab` chose holds for
# every process of this checkout. The environment wins over it. The test suite reads none, so a
# checkout's choices never change what the tests see.
FERRY_ENV_FILE = Path(os.environ.get("FERRY_ENV_FILE") or VAR_DIR / "ferry.env")
FERRY_ENV_FILE_KEYS = set() if os.environ.get("PYTEST_VERSION") else envfile.load(FERRY_ENV_FILE)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _local_secret_key() -> str:
    """A key kept in var/ for a single machine; production sets DJANGO_SECRET_KEY instead."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "core",
    "policies",
    "clusters",
    "migrations_app",
    "ovirt_api",
    "ops",
    # The composition root (config.apps): run_ferry, lab_register and the embedded agent.
    "config",
    # Login lockout (django-axes): its attempts tables, its signals.
    "axes",
]

MIDDLEWARE = [
    # Request metrics (django-prometheus): Before first and After last, so they time everything.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # A request id on every web log line (ferry_common.logs), and a line per request.
    "ops.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header (SECURE_CSP).
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # 400 for control characters in the URL, the query or a form, before any view sees them.
    "core.hostile.RefuseControlCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Turns a refused login into the lockout page (core.security.login_locked_out); after the
    # authentication middleware, as django-axes requires.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'ferry.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server and worker share the file: wait for the writer instead of failing at once.
    # IMMEDIATE takes the write lock when a transaction begins, so a second writer waits for the
    # busy timeout there. With SQLite's default (deferred), both read first and the second one's
    # lock upgrade fails at once with "database is locked" (the timeout does not apply to it),
    # which would fail one of two simultaneous job claims or edits instead of serialising them.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so that a Celery worker started by the end-to-end tests can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("FERRY_TIME_ZONE", "UTC")
USE_I18N = True
# One format for times in Ferry's pages and in Django admin (config/formats/).
FORMAT_MODULE_PATH = ["config.formats"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # `make run` collects into it; tests serve from finders
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# HTTPS deployments: FERRY_SECURE=true turns on everything `check --deploy` asks for.
SECURE = env_bool("FERRY_SECURE", False)
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = SECURE
SECURE_HSTS_SECONDS = 31_536_000 if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response: scripts, styles, images and requests from Ferry itself
# only; no inline script or style, no eval (htmx runs with allowEval and allowScriptTags off, see
# templates/base.html). Images may be data: URIs (the admin's and Swagger UI's icons).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
FERRY_BEHIND_PROXY = env_bool("FERRY_BEHIND_PROXY", False)
if FERRY_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A load balancer's health check and Prometheus's scrape may come over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics$"]

# GET /metrics answers only these addresses or networks (comma-separated; behind the proxy, the
# address the proxy saw). Loopback by default.
FERRY_METRICS_ALLOWED = env_list("FERRY_METRICS_ALLOWED", "127.0.0.0/8,::1")
FERRY_METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(item, strict=False) for item in FERRY_METRICS_ALLOWED]

# Login lockout (django-axes) on every password login: /accounts/login/, /admin/login/ and the
# oVirt-compatible API's SSO. FERRY_LOGIN_FAILURE_LIMIT wrong passwords for one username from one
# address lock that pair out for FERRY_LOGIN_COOLOFF_S seconds; a good password before that clears the
# count. The pair, not the username alone, so that nobody can lock an admin out from elsewhere.
# Every lockout is an entry of the audit log (action "login_locked_out"). `manage.py axes_reset`
# lifts every lockout at once.
FERRY_LOGIN_FAILURE_LIMIT = int(os.environ.get("FERRY_LOGIN_FAILURE_LIMIT", "5"))
FERRY_LOGIN_COOLOFF_S = int(os.environ.get("FERRY_LOGIN_COOLOFF_S", "900"))
AXES_ENABLED = FERRY_LOGIN_FAILURE_LIMIT > 0
AXES_FAILURE_LIMIT = max(FERRY_LOGIN_FAILURE_LIMIT, 1)
AXES_COOLOFF_TIME = datetime.timedelta(seconds=FERRY_LOGIN_COOLOFF_S)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "core.security.login_locked_out"
AXES_CLIENT_IP_CALLABLE = "core.security.client_address"
AXES_USERNAME_CALLABLE = "core.security.login_username"
# Only failures are kept (with the lockouts); a log of every successful login is not Ferry's job.
AXES_DISABLE_ACCESS_LOG = True

# Mail, for password reset only: without FERRY_EMAIL_HOST Ferry has no mailer (and says so to
# `check --deploy` no more: it sends no mail then), and the reset pages do not exist (404).
FERRY_EMAIL_HOST = os.environ.get("FERRY_EMAIL_HOST", "")
MAILERS: dict[str, dict] = {}
SILENCED_SYSTEM_CHECKS = [] if FERRY_EMAIL_HOST else ["mail.W001"]
if FERRY_EMAIL_HOST:
    MAILERS["default"] = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": FERRY_EMAIL_HOST,
            "port": int(os.environ.get("FERRY_EMAIL_PORT", "587")),
            "username": os.environ.get("FERRY_EMAIL_USER", ""),
            "password": os.environ.get("FERRY_EMAIL_PASSWORD", ""),
            "use_tls": env_bool("FERRY_EMAIL_USE_TLS", True),
        },
    }
DEFAULT_FROM_EMAIL = os.environ.get("FERRY_EMAIL_FROM", "ferry@localhost")
# Reset requests an hour, per client address and per e-mail address asked for.
FERRY_PASSWORD_RESET_LIMIT = int(os.environ.get("FERRY_PASSWORD_RESET_LIMIT", "5"))

# API clients: at most FERRY_API_RATE_ANON requests from one address without credentials and
# FERRY_API_RATE_USER per user (DRF's "<number>/<second|minute|hour|day>"; empty: no limit). Over
# it, 429 {"detail": ...} with Retry-After. Counted in Django's cache, which is per process unless
# CACHES names a shared one.
FERRY_API_RATE_ANON = os.environ.get("FERRY_API_RATE_ANON", "60/minute") or None
FERRY_API_RATE_USER = os.environ.get("FERRY_API_RATE_USER", "3000/minute") or None
# A host's agent, per host: it reports progress twice a second during a migration.
FERRY_AGENT_API_RATE = os.environ.get("FERRY_AGENT_API_RATE", "1200/minute") or None

# An unfiltered list of a table with more rows than this is counted from PostgreSQL's estimate
# (core.counting; the API says count_is_estimate): counting 200,000 VMs for every page is not cheap.
FERRY_EXACT_COUNT_MAX = int(os.environ.get("FERRY_EXACT_COUNT_MAX", "10000"))

REST_FRAMEWORK = {
    # Token first: an anonymous request then gets 401 with `WWW-Authenticate: Token`, not a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.auth.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.ModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.AnonThrottle", "core.api.throttling.UserThrottle"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    # DRF's, refusing JSON nested too deep and NUL in strings (core.hostile).
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.FerryAutoSchema",
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # No ?format=: every query parameter of a list is a documented filter or page parameter.
    "URL_FORMAT_OVERRIDE": None,
    # Per user, in the default cache (each process's memory unless CACHES says otherwise).
    "DEFAULT_THROTTLE_RATES": {"token_create": os.environ.get("FERRY_TOKEN_CREATE_RATE", "20/hour")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Ferry API",
    "DESCRIPTION": "Live-migration settings of KVM clusters: clusters, hosts, VMs, migration "
    "policies, migration plans and jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Like every read of the API, the schema needs a login (a session, or a token for scripts).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.refuse_control_characters_in_urls",
        "core.api.schema.names_without_control_characters",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TriStateEnum": "core.choices.TriState",
        "HostStatusEnum": "clusters.models.HostStatus",
        "HostAdminStatusEnum": "clusters.models.AdminHostStatus",
        "VMStatusEnum": "clusters.models.VMStatus",
        "ParallelPolicyEnum": "clusters.models.ParallelPolicy",
        "VMParallelPolicyEnum": "clusters.models.VMParallelPolicy",
        "JobStateEnum": "migrations_app.models.JobState",
    },
}

# Celery. Embedded default: kombu's filesystem transport, which needs no server.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "ferry"
# A migration must never be killed by a Celery time limit; the libvirt layer has its own timeout.
CELERY_TASK_TIME_LIMIT = None
CELERY_TASK_SOFT_TIME_LIMIT = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE

# Host tasks go to a queue per host ("host.<id>") so a worker on each hypervisor serves only its
# own host. With FERRY_HOST_QUEUES=false everything goes to the default queue (single machine).
FERRY_HOST_QUEUES = env_bool("FERRY_HOST_QUEUES", True)
# What the worker acting as every host's agent (FERRY_HOST_QUEUES=false) lets reach libvirt, as a
# hypervisor's ferry-agent decides with --allow-tcp and --socket-dir: qemu+tcp:// (unauthenticated:
# a lab, never production) and qemu:///system?socket= inside these directories. `make lab` sets both.
FERRY_LIBVIRT_ALLOW_TCP = env_bool("FERRY_LIBVIRT_ALLOW_TCP", False)
FERRY_LIBVIRT_SOCKET_DIRS = [os.path.abspath(d) for d in env_list("FERRY_LIBVIRT_SOCKET_DIRS", "") if d]
# Hard limit for one libvirt migration call, and the age after which the reconciler ends a job.
# No total limit on a migration by default (Vdsm has none): it ends by its convergence schedule,
# considered once per pulse, by cancel, or by the stall watchdog (no new low of the data still to
# send for that long). FERRY_MIGRATION_TIMEOUT_S > 0 adds a hard limit.
FERRY_MIGRATION_TIMEOUT_S = float(os.environ.get("FERRY_MIGRATION_TIMEOUT_S", "0"))
FERRY_MIGRATION_PULSE_S = float(os.environ.get("FERRY_MIGRATION_PULSE_S", "10"))
FERRY_MIGRATION_STALL_S = float(os.environ.get("FERRY_MIGRATION_STALL_S", "600"))
# A host's own cap on one migration (Vdsm's migration_max_bandwidth), reported by the worker that
# acts for the hosts of this machine; it applies when a cluster gives no bandwidth figure.
FERRY_HOST_MAX_BANDWIDTH_MIB_S = max(1, int(os.environ.get("FERRY_HOST_MAX_BANDWIDTH_MIB_S", "52")))
# Liveness from heartbeats, never from age: a running job whose agent has not reported for
# FERRY_HEARTBEAT_TIMEOUT_S is ended (or followed again) by that agent from libvirt's real state;
# one whose agent stays silent for FERRY_AGENT_LOST_S is failed as agent_lost. A queued job whose
# message was handed to the broker FERRY_REDISPATCH_S ago, unclaimed while its agent reports, is
# sent again (a claim happens at most once). Queue time never counts.
FERRY_HEARTBEAT_TIMEOUT_S = int(os.environ.get("FERRY_HEARTBEAT_TIMEOUT_S", "60"))
FERRY_AGENT_LOST_S = int(os.environ.get("FERRY_AGENT_LOST_S", "1800"))
FERRY_REDISPATCH_S = int(os.environ.get("FERRY_REDISPATCH_S", "120"))
FERRY_RECONCILE_INTERVAL_S = float(os.environ.get("FERRY_RECONCILE_INTERVAL_S", "15"))
FERRY_CAPABILITIES_INTERVAL_S = int(os.environ.get("FERRY_CAPABILITIES_INTERVAL_S", "300"))
# Connection fields (a host's libvirt_uri and peer_uri, ferry_common/uris.py): qemu+tcp:// (unauthenticated,
# unencrypted) only when allowed, and ?socket= only inside these directories (comma-separated).
# Both are off in production; `make lab` turns them on for its own hosts (var/ferry.env).
FERRY_LIBVIRT_ALLOW_TCP = env_bool("FERRY_LIBVIRT_ALLOW_TCP", False)
FERRY_LIBVIRT_SOCKET_DIRS = env_list("FERRY_LIBVIRT_SOCKET_DIRS", "")
CELERY_BEAT_SCHEDULE = {
    "monitor-hosts": {"task": "ferry.monitor_hosts", "schedule": float(FERRY_CAPABILITIES_INTERVAL_S)},
    "reconcile-jobs": {"task": "ferry.reconcile", "schedule": FERRY_RECONCILE_INTERVAL_S},
}
# Lifetime of a bearer token from the oVirt-compatible API's SSO endpoint (the SDK logs in again after it).
FERRY_OVIRT_TOKEN_TTL_S = int(os.environ.get("FERRY_OVIRT_TOKEN_TTL_S", "3600"))
# Global defaults for the cluster options left at "inherit".
FERRY_DEFAULT_AUTO_CONVERGE = env_bool("FERRY_DEFAULT_AUTO_CONVERGE", False)
FERRY_DEFAULT_COMPRESSED = env_bool("FERRY_DEFAULT_COMPRESSED", False)
FERRY_DEFAULT_ENCRYPTED = env_bool("FERRY_DEFAULT_ENCRYPTED", False)

# Every line on stderr, with the request id and the job id it belongs to (ferry_common.logs);
# FERRY_LOG_FORMAT=json for one JSON object a line.
LOGGING = logs.dict_config(service=os.environ.get("FERRY_LOG_SERVICE"))
LOGGING["loggers"] = {"django.db.backends": {"level": "WARNING"}}

# Errors to Sentry, only when FERRY_SENTRY_DSN is set (sentry-sdk is not even imported otherwise).
FERRY_SENTRY_DSN = os.environ.get("FERRY_SENTRY_DSN", "")
if FERRY_SENTRY_DSN:
    from ops.sentry import sentry_init

    sentry_init(FERRY_SENTRY_DSN)
