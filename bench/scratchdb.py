"""Scratch databases for the benchmarks: created, migrated and dropped by the bench scripts, so a
benchmark never touches development data."""

import base64
import os
import secrets
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg


def production_settings() -> dict[str, str]:
    """The environment of a production process for a benchmark (DEBUG off, so Django keeps no query
    log): a throwaway secret key and encryption key, made for this run, and plain HTTP, since the
    benchmark talks to 127.0.0.1 with no TLS proxy in front."""
    return {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "TRIPOD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "DJANGO_SECURE_SSL_REDIRECT": "false",
    }


def admin_url(url: str) -> tuple[str, str]:
    """The maintenance database's URL on the same server, and the scratch database's name."""
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    return urllib.parse.urlunsplit(parts._replace(path="/postgres")), name


def create_database(url: str) -> None:
    admin, name = admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    admin, name = admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(url: str, keep: bool, log: Callable[[str], None]) -> Iterator[None]:
    """The scratch database, created for the block and dropped after it (kept with ``keep``), also
    on Ctrl-C or an error; Django's connections to it are closed first."""
    create_database(url)
    try:
        yield
    finally:
        from django.apps import apps

        if apps.ready:
            from django.db import connections

            connections.close_all()
        if keep:
            log(f"scratch database kept: {url}")
        else:
            drop_database(url)
            log("scratch database dropped")
