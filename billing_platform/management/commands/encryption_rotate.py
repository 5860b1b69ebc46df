"""``manage.py encryption_rotate``: encrypt every secret stored at rest again under the newest key
of TRIPOD_ENCRYPTION_KEYS. Run it after putting a new key first; then the old key can be dropped."""

from typing import Any

from django.core.management.base import BaseCommand

from billing_platform.encryption import rotate_all


class Command(BaseCommand):
    help = "Encrypt every stored secret again under the first key of TRIPOD_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        for column, count in rotate_all().items():
            self.stdout.write("%s: %d value(s) encrypted under the newest key" % (column, count))
