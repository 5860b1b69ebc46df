"""Settings, read from the environment (twelve-factor): nothing here differs between machines."""

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import dj_database_url
import structlog
from django.utils.translation import gettext_lazy as _

from billing_platform.money import iso_currency_codes

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", False)
# The development key is only used when nothing is configured; production sets DJANGO_SECRET_KEY.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production")
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
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "djmoney",
    "billing_platform",
    "tenancy",
    "customers",
    "catalog",
    "subscriptions",
    "usage",
    "invoicing",
    "backoffice",
]

MIDDLEWARE = [
    "billing_platform.middleware.RequestLogMiddleware",
    "billing_platform.middleware.RejectNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tenancy.middleware.StaffTenantMiddleware",
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
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
}

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
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["billing_platform.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "billing_platform.api.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "billing_platform.api.pagination.CursorPagination",
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
    # Served from the drf-spectacular-sidecar package: the docs work offline, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
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

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
