"""Scratch databases for the benchmarks: created, migrated and dropped by the bench scripts, so a
benchmark never touches development data."""

import urllib.parse

import psycopg


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
