"""Production settings, as a deployment starts them: in a fresh process, with the environment alone
(pytest's own marker removed, so the settings cannot tell they run under a test)."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
SHOW = (
    "import json, django; from django.conf import settings; django.setup(); print(json.dumps({"
    "'debug': settings.DEBUG, 'ssl_redirect': settings.SECURE_SSL_REDIRECT, "
    "'proxy': settings.SECURE_PROXY_SSL_HEADER, 'hsts': settings.SECURE_HSTS_SECONDS, "
    "'subdomains': settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, 'preload': settings.SECURE_HSTS_PRELOAD, "
    "'cookies': [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.SESSION_COOKIE_HTTPONLY, "
    "settings.CSRF_COOKIE_HTTPONLY, settings.SESSION_COOKIE_SAMESITE, settings.CSRF_COOKIE_SAMESITE], "
    "'keys': len(settings.TRIPOD_ENCRYPTION_KEYS)}))"
)


def production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TRIPOD_", "PYTEST_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="billing_platform.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        TRIPOD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="billing.example.com",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v != "<unset>"}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_production_settings_pass_check_deploy_with_no_warning() -> None:
    # the same command as `make check` (scripts/devenv.py), behind a TLS proxy
    done = run(
        production_env(DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"),
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert done.returncode == 0, done.stderr
    # W021 (HSTS preload) is the operator's opt-in, silenced unless DJANGO_SECURE_HSTS_PRELOAD=true
    assert "System check identified no issues (1 silenced)." in done.stdout


def test_production_defaults_are_https_only() -> None:
    done = run(production_env(DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"), "-c", SHOW)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "debug": False,
        "ssl_redirect": True,
        "proxy": ["HTTP_X_FORWARDED_PROTO", "https"],
        "hsts": 31_536_000,  # 365 days x 86,400 s
        "subdomains": True,
        "preload": False,
        "cookies": [True, True, True, True, "Lax", "Lax"],
        "keys": 1,
    }


def test_hsts_and_redirect_are_configurable() -> None:
    env = production_env(
        DJANGO_SECURE_HSTS_SECONDS="3600", DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_SECURE_HSTS_PRELOAD="true"
    )
    shown = json.loads(run(env, "-c", SHOW).stdout)
    assert (shown["hsts"], shown["ssl_redirect"], shown["preload"], shown["proxy"]) == (3600, False, True, None)


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "TRIPOD_ENCRYPTION_KEYS"])
def test_production_refuses_to_start_without_its_secrets(missing: str) -> None:
    done = run(production_env(**{missing: "<unset>"}), "manage.py", "check")
    assert done.returncode != 0
    assert "ImproperlyConfigured: %s is not set." % missing in done.stderr


def test_a_key_that_is_not_a_fernet_key_is_refused() -> None:
    keys = "%s,not-a-key" % Fernet.generate_key().decode()
    done = run(production_env(TRIPOD_ENCRYPTION_KEYS=keys), "manage.py", "check")
    assert done.returncode != 0
    assert "TRIPOD_ENCRYPTION_KEYS: key 2 is not a Fernet key" in done.stderr


def test_a_malformed_rate_limit_is_refused() -> None:
    done = run(production_env(TRIPOD_RATE_LIMIT_API_KEY="lots"), "manage.py", "check")
    assert done.returncode != 0
    assert "Rate limit api/key is 'lots'" in done.stderr


def test_development_needs_nothing_set() -> None:
    # `make run` sets DJANGO_DEBUG=true and nothing else: a development key, plain HTTP
    env = production_env(DJANGO_DEBUG="true", DJANGO_SECRET_KEY="<unset>", TRIPOD_ENCRYPTION_KEYS="<unset>")
    done = run(env, "-c", SHOW)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["debug"], shown["ssl_redirect"], shown["hsts"], shown["cookies"][:2]) == (
        True,
        False,
        0,
        [False, False],
    )
    assert shown["keys"] == 1
