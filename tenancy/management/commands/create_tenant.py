import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from billing_platform.errors import DomainError
from tenancy.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant with its owner, a full-scope API key and a device-cloud webhook secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--currency", required=True, help="ISO 4217 code, e.g. EUR")
        parser.add_argument("--timezone", required=True, help="IANA zone, e.g. Europe/Paris")
        parser.add_argument("--admin-email", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            created = tenant_create(
                name=options["name"],
                slug=options["slug"],
                currency=options["currency"].upper(),
                timezone=options["timezone"],
                admin_email=options["admin_email"],
                at=timezone.now(),
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"Tenant {created.tenant.slug} created.")
        if created.admin_password:
            self.stdout.write("Owner login: {} / {}".format(options["admin_email"], created.admin_password))
        else:
            self.stdout.write("Owner login: {} (existing user, password unchanged)".format(options["admin_email"]))
        self.stdout.write("Keep the API key and the device-cloud secret now: they are not shown again.")
        self.stdout.write(
            json.dumps(
                {
                    "tenant": created.tenant.slug,
                    "api_key": created.api_key,
                    "device_cloud_secret": created.device_cloud_secret,
                }
            )
        )
