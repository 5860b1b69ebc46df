"""Settings, read from the environment (twelve-factor): nothing here differs between machines."""

import base64
import copy
import hashlib
import os
import re
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dj_database_url
import structlog
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Queue

from billing_platform.money import iso_currency_codes

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", False)

# --- Production or not: secrets are required unless developing or testing -------------------------
# Development sets DJANGO_DEBUG=true (`make run` does). Tests (pytest sets PYTEST_VERSION) and the
# type checker (django-stubs imports these settings inside mypy) run without a deployment's
# secrets too. Anything else is production: it refuses to start without its secrets rather than
# fall back on a key everyone can read in this file.
TESTING = "PYTEST_VERSION" in os.environ
PRODUCTION = not (DEBUG or TESTING or "mypy" in sys.modules)


def required_secret(name: str, development_value: str) -> str:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(
            "%s is not set. Production needs it (see docs/operations.md); "
            "for development, set DJANGO_DEBUG=true." % name
        )
    return development_value


SECRET_KEY = required_secret("DJANGO_SECRET_KEY", "dev-only-insecure-key-never-used-in-production")
# --- end: production or not -------------------------------------------------------------------------

ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "djmoney",
    "billing_platform",
    "tenancy",
    "webhooks",
    "customers",
    "catalog",
    "subscriptions",
    "usage",
    "invoicing",
    "payments",
    "revrec",
    "support",
    "partners",
    "backoffice",
    "portal",
]

MIDDLEWARE = [
    "billing_platform.middleware.RequestLogMiddleware",
    "billing_platform.middleware.RejectNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "billing_platform.middleware.TenantScopeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tenancy.middleware.StaffTenantMiddleware",
    "billing_platform.middleware.RateLimitHeadersMiddleware",
    "billing_platform.api.query.UnknownQueryParametersMiddleware",
    "billing_platform.middleware.ApiTransactionMiddleware",
]

ROOT_URLCONF = "billing_platform.urls"
WSGI_APPLICATION = "billing_platform.wsgi.application"

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
                "django.template.context_processors.i18n",
                "tenancy.context_processors.tenancy",
                "portal.nav.portal_nav",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tripod"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
# Reports on a read replica (``billing_platform.db_router``): with DATABASE_REPLICA_URL set (a
# streaming replica of the primary, the same login role), revenue, MRR, usage statistics,
# receivables, the commission report and the back-office's CSV exports read there; every write and
# every other read stays on the primary. Without it, everything runs on the primary.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "").strip()
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL,
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
elif TESTING:
    # The tests' replica: a second connection to the test database (same server and name, so the
    # test runner creates the database once), used by the tests that turn REPORTS_DATABASE to it.
    DATABASES["replica"] = copy.deepcopy(DATABASES["default"])
REPORTS_DATABASE = "replica" if DATABASE_REPLICA_URL else "default"
DATABASE_ROUTERS = ["billing_platform.db_router.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The role the application runs as (``SET ROLE`` on every connection), bound by the row-level
# security policies of tenant-owned tables: no superuser, no BYPASSRLS, owner of nothing. The login
# role of DATABASE_URL owns the tables and runs ``migrate``, which creates this role when it may and
# grants it what it needs. Empty: the login role is used as it is (see docs/operations.md).
DATABASE_APP_ROLE = os.environ.get("DATABASE_APP_ROLE", "tripod_app")

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
# A task's message is acknowledged when the task ends, not when it starts: a worker child killed
# mid-task (SIGKILL, out of memory) fails its task with WorkerLostError, which Celery then rejects
# and Redis queues again at once (REJECT_ON_WORKER_LOST). A worker whose main process dies keeps
# nothing: its unacknowledged messages wait in Redis until the visibility timeout below, and the
# jobs watchdog (billing_platform.jobs) takes the runs up again well before that.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Every task is bounded: SoftTimeLimitExceeded is raised in it after the soft limit (a bill-run chunk
# retries, an export fails with its reason), and its child is killed at the hard
# limit. The tasks that may rightly run long on a big tenant get 570 s / 600 s
# (billing_platform.tasks.LONG_TASK_LIMITS: the exports, the dunning pass, the due subscription
# changes and ends, the partner statements, card charges); recognition_run_execute_task works 240 s
# at a time and queues its continuation.
CELERY_TASK_SOFT_TIME_LIMIT = 270
CELERY_TASK_TIME_LIMIT = 300
# Redis gives an unacknowledged message to another worker after this many seconds, whether or not its
# worker still runs it: it must outlast the longest a message is held. That is the longest countdown
# a task is queued with (600 s: subscriptions.tasks.webhook_apply_task's backoff; a worker holds an
# ETA message unacknowledged until it is due) plus the longest hard time limit (600 s, LONG_TASK_LIMITS),
# with half again as margin: 1,800 s. Shorter, a slow task would run twice; longer, a message of a
# dead worker would wait longer, but runs do not wait for it (the watchdog).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "1800"))}
# Queues (docs/operations.md, "Queues"): a worker serves the queues given by -Q, all of them by
# default in development (scripts/devenv.py) and one group per worker in docker-compose.yml. What is
# not routed goes to "default": beat's fan-out tasks, the sweeps, the watchdog, purges.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_QUEUES_ALL = ("default", "ingest", "billing", "webhooks", "documents")
# Declared, so that a worker started without -Q consumes every one of them.
CELERY_TASK_QUEUES = tuple(Queue(name, routing_key=name) for name in CELERY_QUEUES_ALL)
CELERY_TASK_ROUTES = {
    # Events arriving from outside, applied after their request was acknowledged.
    "subscriptions.tasks.webhook_apply_task": {"queue": "ingest"},
    "payments.tasks.gateway_event_apply_task": {"queue": "ingest"},
    # Work on money for one tenant: runs, schedules, dunning, charging, statements.
    "invoicing.tasks.bill_run_execute_task": {"queue": "billing"},
    "invoicing.tasks.bill_run_chunk_task": {"queue": "billing"},
    "invoicing.tasks.bill_runs_start_due_task": {"queue": "billing"},
    "revrec.tasks.recognition_run_execute_task": {"queue": "billing"},
    "revrec.tasks.recognition_runs_start_scheduled_task": {"queue": "billing"},
    "payments.tasks.dunning_run_task": {"queue": "billing"},
    "payments.tasks.attempt_send_task": {"queue": "billing"},
    "payments.tasks.invoices_charge_task": {"queue": "billing"},
    "partners.tasks.commission_statements_build_task": {"queue": "billing"},
    "subscriptions.tasks.subscription_changes_apply_due_tenant_task": {"queue": "billing"},
    "subscriptions.tasks.subscription_ends_apply_due_tenant_task": {"queue": "billing"},
    # Outbound webhooks: slow receivers must not hold up billing.
    "webhooks.tasks.webhook_deliveries_send_task": {"queue": "webhooks"},
    "webhooks.tasks.webhook_deliveries_sweep_tenant_task": {"queue": "webhooks"},
    # Files: invoice PDFs (WeasyPrint, the heaviest CPU per task) and their e-mails, CSV exports.
    "invoicing.tasks.invoice_render_task": {"queue": "documents"},
    "invoicing.tasks.invoice_send_again_task": {"queue": "documents"},
    "backoffice.tasks.data_export_run_task": {"queue": "documents"},
}
# The jobs watchdog (billing_platform.jobs): a run, a recognition run or an export with no progress for
# JOB_STALLED_SECONDS is taken up again. Its pieces are bounded by the hard time limit (300 s), so
# after 360 s without a chunk committing none of its chunks still runs (an export, one task of up to
# 600 s that shows no progress until it ends, waits 660 s); checked every minute, a run held by a
# dead worker moves again within 7 minutes, instead of the visibility timeout's 30.
JOB_STALLED_SECONDS = float(os.environ.get("JOB_STALLED_SECONDS", "360"))
# Customers per bill-run chunk, the unit of work of a Celery task and of what the watchdog re-queues.
BILL_RUN_CHUNK_SIZE = int(os.environ.get("BILL_RUN_CHUNK_SIZE", "200"))
# A job taken up again this many times in a row with no progress in between is marked failed, with a
# note on its page, instead of being re-queued forever.
JOB_MAX_RECOVERIES = int(os.environ.get("JOB_MAX_RECOVERIES", "5"))
JOB_WATCHDOG_INTERVAL_SECONDS = float(os.environ.get("JOB_WATCHDOG_INTERVAL_SECONDS", "60"))
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "apply-due-subscription-changes": {
        "task": "subscriptions.tasks.subscription_changes_apply_due_task",
        "schedule": 900.0,  # every 15 minutes: period ends fall on local midnights in every time zone
    },
    "end-subscriptions-not-renewed": {
        "task": "subscriptions.tasks.subscription_ends_apply_due_task",
        "schedule": 900.0,  # every 15 minutes: commitments end at local midnights in every time zone
    },
    "bill-runs": {
        "task": "invoicing.tasks.bill_runs_scheduled_task",
        "schedule": 3600.0,  # hourly: each customer is billed once its local midnight of the billing date has passed
    },
    "dunning": {
        "task": "payments.tasks.dunning_runs_task",
        # Hourly: each customer's dunning day starts at its local midnight, whatever its time zone.
        "schedule": 3600.0,
    },
    "stripe-events-sweep": {
        "task": "payments.tasks.gateway_events_sweep_task",
        # A stored Stripe event whose apply task was lost is applied again (payments.webhooks).
        "schedule": 300.0,
    },
    "recognition-runs": {
        "task": "revrec.tasks.recognition_runs_scheduled_task",
        # Hourly: a tenant's previous month is run once, in the first pass after its local midnight
        # of the 1st (revrec.periods.recognition_runs_start_scheduled); the other passes find it run.
        "schedule": 3600.0,
    },
    "commission-statements": {
        "task": "partners.tasks.commission_statements_scheduled_task",
        # Hourly: each tenant's partners get their statements of the month before on the 1st, from
        # the first pass after local midnight (partners.statements.statements_build_scheduled).
        "schedule": 3600.0,
    },
    "data-exports-purge": {
        "task": "backoffice.tasks.data_exports_purge_task",
        "schedule": 3600.0,  # hourly: a back-office CSV export's file is deleted once it has expired
    },
    "jobs-watchdog": {
        "task": "tenancy.tasks.jobs_watchdog_task",
        # Runs and exports with no progress for JOB_STALLED_SECONDS are taken up again (billing_platform.jobs).
        "schedule": JOB_WATCHDOG_INTERVAL_SECONDS,
        # Not run late: during a backlog the next one replaces it (its per-tenant tasks expire too).
        "options": {"expires": JOB_WATCHDOG_INTERVAL_SECONDS},
    },
    "webhook-deliveries-sweep": {
        "task": "webhooks.tasks.webhook_deliveries_sweep_task",
        # Retries fall due (5 min, 30 min...), and a delivery committed but never queued is found.
        "schedule": 30.0,  # webhooks.delivery.SWEEP_INTERVAL
    },
}

# Back-office CSV exports (backoffice.exports): a list of up to this many rows downloads at once;
# a longer one is written by a Celery task and downloaded from the Exports page, for this many days.
DATA_EXPORT_STREAM_MAX_ROWS = int(os.environ.get("DATA_EXPORT_STREAM_MAX_ROWS", "5000"))
DATA_EXPORT_KEEP_DAYS = int(os.environ.get("DATA_EXPORT_KEEP_DAYS", "7"))

# Stripe: each tenant's own keys are in payments.PaymentSettings. STRIPE_API_BASE points the Stripe
# library at another server (a local fake in tests and development); empty in production.
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "").strip()
# Seconds before a Stripe call counts as timed out: its outcome is then unknown and reconciled.
STRIPE_TIMEOUT_SECONDS = float(os.environ.get("STRIPE_TIMEOUT_SECONDS", "20"))
# Seconds an attempt whose outcome is unknown, and that Stripe does not show, stays unknown before
# it is taken as never made (payments.charging.unknown_window): longer than any request in flight.
PAYMENT_ATTEMPT_UNKNOWN_WINDOW_SECONDS = int(os.environ.get("PAYMENT_ATTEMPT_UNKNOWN_WINDOW_SECONDS", "3600"))

# Outbound webhooks go to https URLs whose host resolves to public addresses only (webhooks.targets).
# On, plain http and private, loopback and link-local addresses are allowed too: for development
# (a receiver on 127.0.0.1), never in production. On under DEBUG; the tests turn it on (conftest.py).
WEBHOOKS_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOKS_ALLOW_PRIVATE_TARGETS", DEBUG)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "backoffice:login"
LOGIN_REDIRECT_URL = "backoffice:home"
LOGOUT_REDIRECT_URL = "backoffice:login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "billing@tripod.localhost")
# The site's public address, for links in e-mails sent outside a request (portal invitations).
TRIPOD_PUBLIC_URL = os.environ.get("TRIPOD_PUBLIC_URL", "http://localhost:8000")

# Money columns are sized once here (max digits / decimal places) and reused by every app.
MONEY_MAX_DIGITS = 19
MONEY_DECIMAL_PLACES = 4
UNIT_PRICE_MAX_DIGITS = 28
UNIT_PRICE_DECIMAL_PLACES = 10
CURRENCIES_DEFAULT_ROUNDING = Decimal("0.01")
# django-money's currencies (its form choices): the ISO 4217 codes Tripod accepts, no more.
CURRENCIES = iso_currency_codes()

# Bodies above this size are refused before any view reads them: 413 problem+json on the API
# (``billing_platform.errors.handler400``). Django's default, stated: a full batch of 1,000 usage
# events is far below it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenancy.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenancy.permissions.HasTenantScope"],
    "DEFAULT_RENDERER_CLASSES": ["billing_platform.api.renderers.OrjsonRenderer"],
    "DEFAULT_PARSER_CLASSES": ["billing_platform.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "billing_platform.api.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "billing_platform.api.pagination.CursorPagination",
    # Per API key and per tenant on every route (TRIPOD_RATE_LIMITS below).
    "DEFAULT_THROTTLE_CLASSES": ["tenancy.throttling.ApiRateThrottle"],
    "EXCEPTION_HANDLER": "billing_platform.errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tripod API",
    "DESCRIPTION": (
        "One catalog, one subscription, one invoice for connected-device vendors. "
        "Authenticate with `Authorization: Bearer <api key>`. Errors are RFC 9457 problem+json."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # A PATCH body is named after its serializer ("CustomerPatchRequest"), not "Patched..."; its
    # fields are optional anyway.
    "COMPONENT_SPLIT_PATCH": False,
    # Served from the drf-spectacular-sidecar package: the docs work offline, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge fetched from the public Swagger validator: the page loads nothing from elsewhere.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "billing_platform.api.schema.declare_problems",
    ],
    "ENUM_NAME_OVERRIDES": {
        "SubscriptionStatusEnum": "subscriptions.models.SubscriptionStatus",
        "WebhookStatusEnum": "subscriptions.models.WebhookStatus",
        "InvoiceKindEnum": "invoicing.models.InvoiceKind",
        "InvoiceStatusEnum": "invoicing.models.InvoiceStatus",
        "BillRunStatusEnum": "invoicing.models.BillRunStatus",
        "ProductKindEnum": "catalog.models.ProductKind",
        "TaxCategoryEnum": "catalog.models.TaxCategory",
        "LineTypeEnum": "invoicing.lines.LineType",
        "ChangeActionEnum": "subscriptions.models.ChangeAction",
        "ChangeLineTypeEnum": "subscriptions.api.serializers.CHANGE_LINE_TYPES",
        "ChangeStatusEnum": "subscriptions.api.serializers.CHANGE_STATUSES",
        "ChangeOutcomeEnum": "subscriptions.models.ChangeStatus",
        "DeviceEventTypeEnum": "subscriptions.api.serializers.DEVICE_EVENT_TYPE_CHOICES",
        "RecognitionPatternEnum": "revrec.models.Pattern",
        "SupportCaseStatusEnum": "support.models.CaseStatus",
        "SupportAuthorTypeEnum": "support.models.AuthorType",
        "JournalSourceEnum": "revrec.models.JournalSource",
        "JournalAccountEnum": "revrec.models.Account",
        "RecognitionRunStatusEnum": "revrec.models.RecognitionRunStatus",
        "RevenuePeriodStatusEnum": "revrec.api.run_serializers.PERIOD_STATUSES",
        "RevenueStreamEnum": "revrec.api.run_serializers.REVENUE_STREAMS",
        "ExportFormatEnum": "revrec.models.ExportFormat",
        "PartnerStatusEnum": "customers.models.PartnerStatus",
        "PartnerRoleEnum": "partners.models.PartnerRole",
        # The portal users' role keeps the name it was published under.
        "RoleEnum": "customers.models.PortalRole",
        "StatementStatusEnum": "partners.models.StatementStatus",
        "CommissionLegEnum": "partners.models.CommissionLeg",
        # A user's own language: blank for their customer's or partner's.
        "UserLanguageEnum": ["", "en", "fr"],
        "LanguageEnum": "customers.models.Language",
    },
}

TRIPOD = {
    # Last-used time of an API key is written at most this often (seconds), not on every request.
    "API_KEY_TOUCH_INTERVAL": 60,
    "IDEMPOTENCY_KEY_MAX_LENGTH": 255,
    # JSON nested deeper is refused: API bodies and webhooks (400), a usage event (that event is
    # rejected), the back-office's JSON fields. See billing_platform.json_input.
    "JSON_MAX_DEPTH": 32,
}

LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
_pre_chain: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            "foreign_pre_chain": _pre_chain,
        },
        "console": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.dev.ConsoleRenderer(colors=False),
            ],
            "foreign_pre_chain": _pre_chain,
        },
    },
    "handlers": {"default": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["default"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}
structlog.configure(
    processors=[*_pre_chain, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
    logger_factory=structlog.stdlib.LoggerFactory(),
    cache_logger_on_first_use=True,
)

# --- Transport security: HTTPS, HSTS, cookies (`manage.py check --deploy` passes in production) ------
# Production defaults are strict; development and tests speak plain HTTP to 127.0.0.1.
# Behind a proxy that terminates TLS, name the header it sets, e.g.
# DJANGO_SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto (the proxy must overwrite it on every request).
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
# The container's health check asks over plain HTTP from inside the host.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
_proxy_header = os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER", "").strip()
SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https") if _proxy_header else None
# One year, sent on HTTPS responses only; start lower (e.g. 3600) while trying HTTPS out.
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "31536000" if PRODUCTION else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Asking browsers to preload HTTPS for the whole domain is the operator's decision (it is hard to
# undo): off unless DJANGO_SECURE_HSTS_PRELOAD=true, and Django's reminder (W021) is silenced.
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", PRODUCTION)
SESSION_COOKIE_HTTPONLY = True
# Pages hand the token to htmx and forms in the HTML; no script reads the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
# --- end: transport security ------------------------------------------------------------------------

# --- Content-Security-Policy (django-csp): only this host's own, vendored assets ---------------------
# No inline script or style anywhere: pages load static/tripod.js and CSS files. Images may be
# data: URIs (Pico's and Swagger UI's icons are). The invoice PDF is shown in a frame of the same
# origin and gets its own policy (backoffice.invoicing.views, invoicing.api.views).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# --- end: Content-Security-Policy -------------------------------------------------------------------

# --- API rate limits (billing_platform.ratelimit, tenancy.throttling) --------------------------------
# "<requests>/<period>", period one of s, min, h, day. Counted in Redis in fixed windows.
# Per API key and per tenant (all its keys together) on every API route; usage events and
# device-cloud webhooks have their own, higher limits (the per-key limit on events is each tenant's
# usage setting, rate_limit_per_second).
TRIPOD_RATE_LIMITS = {
    "api": {
        "key": os.environ.get("TRIPOD_RATE_LIMIT_API_KEY", "1200/min"),
        "tenant": os.environ.get("TRIPOD_RATE_LIMIT_API_TENANT", "3000/min"),
    },
    "ingest": {
        "tenant": os.environ.get("TRIPOD_RATE_LIMIT_INGEST_TENANT", "500/s"),
    },
    "webhooks": {
        "tenant": os.environ.get("TRIPOD_RATE_LIMIT_WEBHOOKS_TENANT", "50/s"),
    },
}
for _scope, _limits in TRIPOD_RATE_LIMITS.items():
    for _holder, _rate in _limits.items():
        # The same grammar as billing_platform.ratelimit.parse_rate, checked before anything starts.
        if not re.fullmatch(r"\s*[1-9]\d*\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*", _rate):
            raise ImproperlyConfigured(
                "Rate limit %s/%s is %r: write <requests>/<s|min|h|day>, e.g. 1200/min." % (_scope, _holder, _rate)
            )
# --- end: API rate limits ---------------------------------------------------------------------------

# --- Encryption of secrets at rest (billing_platform.encryption) -----------------------------------
# TRIPOD_ENCRYPTION_KEYS: comma-separated Fernet keys, newest first. The first encrypts; every one
# decrypts, so a key is rotated by putting a new one in front, running `manage.py
# encryption_rotate`, then dropping the old one. Make a key with
# `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
# Development and tests derive one from SECRET_KEY; production refuses to start without it.
_dev_encryption_key = base64.urlsafe_b64encode(hashlib.sha256(b"tripod-encryption:" + SECRET_KEY.encode()).digest())
TRIPOD_ENCRYPTION_KEYS = [
    key.strip()
    for key in required_secret("TRIPOD_ENCRYPTION_KEYS", _dev_encryption_key.decode()).split(",")
    if key.strip()
]
if not TRIPOD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("TRIPOD_ENCRYPTION_KEYS holds no key.")
for _position, _key in enumerate(TRIPOD_ENCRYPTION_KEYS, start=1):
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "TRIPOD_ENCRYPTION_KEYS: key %d is not a Fernet key (32 bytes, url-safe base64)." % _position
        ) from None
# --- end: encryption of secrets at rest -------------------------------------------------------------

# --- Staff login: allauth (login, password reset, two-factor), axes (lockout), sessions -----------
# The back-office's doors. allauth's LoginView serves /app/login/ and its MFA (TOTP, WebAuthn
# passkeys, recovery codes) challenges a staff member who enrolled a second factor; django-axes
# counts failed logins in the database and locks out per account and per address.
INSTALLED_APPS += ["allauth", "allauth.account", "allauth.mfa", "axes"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "allauth.account.middleware.AccountMiddleware",
)
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as axes asks: it turns a lockout into its page
AUTHENTICATION_BACKENDS = [
    # First: refuses before any password is checked while the account or the address is locked out.
    "axes.backends.AxesStandaloneBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Staff log in with their e-mail address; nobody signs up (owners invite, see tenancy.team).
ACCOUNT_ADAPTER = "backoffice.auth.StaffAccountAdapter"
MFA_ADAPTER = "backoffice.auth.StaffMFAAdapter"  # second-factor secrets encrypted at rest
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"  # an invitation link already proves the mailbox
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SESSION_REMEMBER = True  # no "remember me": every session ends after SESSION_COOKIE_AGE idle
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Tripod] "
ACCOUNT_EMAIL_NOTIFICATIONS = True  # a short e-mail after a password or second-factor change
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False  # a reset asked for an unknown address mails nobody
ACCOUNT_RATE_LIMITS = {
    # django-axes throttles password logins (per account and per address): allauth's own login
    # limits would answer before axes counts the attempt. Its "login_failed" limit stays: it also
    # throttles second-factor codes (5 wrong codes per user in 5 minutes).
    "login": None,
}
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_TOTP_ISSUER = "Tripod"
MFA_RECOVERY_CODES_SHOW_ONCE = True  # shown once, right after they are generated
MFA_ALLOW_UNVERIFIED_EMAIL = True  # staff addresses are proven by their invitation, not by allauth
# Browsers allow WebAuthn over plain HTTP on localhost only; fido2 checks the origin's scheme.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG

AXES_FAILURE_LIMIT = int(os.environ.get("STAFF_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("STAFF_LOGIN_COOLOFF_MINUTES", "15")))
# Two separate counters: an account is locked after that many failures from any address, an address
# after that many failures on any accounts.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_CALLABLE = "backoffice.auth.login_username"
AXES_CLIENT_IP_CALLABLE = "backoffice.auth.client_ip"
AXES_LOCKOUT_CALLABLE = "backoffice.auth.lockout_response"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_RESET_ON_SUCCESS = False  # failures are forgotten after the cool-off, not by a success in between
# Reverse proxies in front of Tripod that append to X-Forwarded-For (0: none, REMOTE_ADDR is the client).
STAFF_LOGIN_TRUSTED_PROXIES = int(os.environ.get("DJANGO_TRUSTED_PROXY_COUNT", "0"))

# A staff session ends after 12 hours without a request; each request starts the 12 hours again.
SESSION_COOKIE_AGE = 12 * 3600
# The customer portal's own session cookie (customers/portal.py): never the staff session's.
PORTAL_SESSION_COOKIE = "tripod_portal"
# The partner dashboard's own session cookie (partners/sessions.py): neither the staff's nor the portal's.
PARTNER_SESSION_COOKIE = "tripod_partner"
SESSION_SAVE_EVERY_REQUEST = True

# Invitations to join a tenant's team are valid this long, and once.
STAFF_INVITATION_MAX_AGE = timedelta(days=int(os.environ.get("STAFF_INVITATION_DAYS", "7")))
