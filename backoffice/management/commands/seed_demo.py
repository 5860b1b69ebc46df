"""Idempotent demo data: the "Smart Fleet" vendor of the specs, a staff login, customers, its catalog
and a billing history (``backoffice.management.demo_history``), portal users, and its partner AlpNet
with its dashboard login."""

import sys
from contextlib import redirect_stdout
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from backoffice.management.demo_history import NON_SENDING_EMAIL_BACKENDS, History, billing_history_seed
from billing_platform.periods import local_date
from billing_platform.rls import tenant_context
from catalog.models import Plan
from catalog.services import meter_create, plan_create, plan_update, product_create, tax_rate_set
from customers.models import Customer, Partner, PortalRole, PortalUser
from customers.services import customer_create, customer_update
from invoicing.models import Invoice, InvoiceKind, InvoiceStatus
from partners.commissions import month_after, month_first
from partners.models import CommissionStatement, PartnerRole, PartnerUser
from partners.services import partner_create
from partners.statements import current_month, statement_approve, statement_mark_paid, statements_build
from revrec.periods import recognition_run_create, recognition_run_execute
from revrec.rates import RateInput, exchange_rate_list, exchange_rates_set
from revrec.schedules import next_month
from subscriptions.models import Subscription
from support.models import SupportCase
from support.services import case_open, message_add
from tenancy.actors import Actor
from tenancy.keys import generate_webhook_secret
from tenancy.models import ApiKeyScope, Membership, Role, Tenant
from tenancy.services import api_key_create, tenant_seller_update

DEMO_EMAIL = "demo@smartfleet.test"
DEMO_PASSWORD = "smartfleet-demo"  # a demo login, printed on every start; never used outside seed_demo

# Made up, with check digits that pass (SIREN Luhn, FR VAT key = (12 + 3 × (SIREN mod 97)) mod 97),
# so that the demo's Factur-X invoices carry a complete seller.
SELLER = {
    "legal_name": "Smart Fleet Telematics SAS",
    "vat_number": "FR74852379890",
    "legal_registration_id": "852379890",
    "legal_registration_scheme": "0002",  # SIREN
    "address_line1": "12 rue de la Boétie",
    "address_line2": "Bâtiment B, 3e étage",
    "postal_code": "75008",
    "city": "Paris",
    "country": "FR",
    "billing_email": "facturation@smartfleet.test",
}

# Where each demo customer's invoices are sent (EN 16931 BG-8), set on the rows.
ADDRESSES = {
    "dupont": {"address_line1": "8 avenue des Transporteurs", "postal_code": "94150", "city": "Rungis"},
    "nordlog": {"address_line1": "Hamngatan 4", "postal_code": "111 47", "city": "Stockholm"},
    "pacific-haul": {"address_line1": "100 Harbor Blvd", "postal_code": "90731", "city": "San Pedro"},
}

CUSTOMERS = [
    {
        "external_id": "dupont",
        "name": "Transports Dupont",
        "email": "compta@transports-dupont.test",
        "country": "FR",
        "currency": "EUR",
        "timezone": "Europe/Paris",
        "language": "fr",
        "tax_id": "FR40303265045",
        "billing_day": 1,
    },
    {
        "external_id": "nordlog",
        "name": "Nordic Logistics AB",
        "email": "invoices@nordlog.test",
        "country": "SE",
        "currency": "EUR",
        "timezone": "Europe/Stockholm",
        "language": "en",
        # A Swedish business with its VAT number: its hardware is an intra-community supply (K) and
        # its services are reverse-charged (AE).
        "tax_id": "SE556012579001",
        "billing_day": 15,
    },
    {
        "external_id": "pacific-haul",
        "name": "Pacific Haulage Inc.",
        "email": "ap@pacifichaul.test",
        "country": "US",
        "currency": "USD",
        "timezone": "America/Los_Angeles",
        "language": "en",
        "billing_day": 31,
    },
]


CUSTOMERS_SINCE = timedelta(days=100)
# The demo's portal logins (a password, so that trying the portal needs no mailbox; real portal users
# usually log in with an e-mailed code): (customer, e-mail, name, role).
DEMO_PORTAL_PASSWORD = "fleet-portal-demo"
PORTAL_USERS = [
    ("dupont", "claire.martin@transports-dupont.test", "Claire Martin", PortalRole.ADMIN),
    ("nordlog", "erik.lind@nordlog.test", "Erik Lind", PortalRole.BILLING),
]


# The demo's partner: AlpNet, the reseller that sold the Smart Fleet deal to Transports Dupont
# (specs/partners.md's worked example), and its admin's dashboard login (a password, as the portal's).
DEMO_PARTNER_PASSWORD = "alpnet-partner-demo"
PARTNER: dict[str, Any] = {
    "code": "alpnet",
    "name": "AlpNet",
    "email": "channel@alpnet.test",
    "country": "FR",
    "currency": "EUR",
    "language": "fr",
    "commission_plan": {"hardware": "5", "service": "20", "usage": "10", "fee": "0"},
}
PARTNER_CUSTOMER = "dupont"
PARTNER_USER = ("paul.girard@alpnet.test", "Paul Girard", PartnerRole.ADMIN)


class Command(BaseCommand):
    help = "Create (or leave as is) the Smart Fleet demo tenant, its staff login and demo customers."

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        actor = Actor.system("seed_demo")
        with transaction.atomic():
            tenant, created = Tenant.objects.get_or_create(
                slug="smart-fleet",
                defaults={
                    "name": "Smart Fleet Telematics",
                    "default_currency": "EUR",
                    "timezone": "Europe/Paris",
                    "device_cloud_secrets": [generate_webhook_secret()],
                },
            )
            user_model = get_user_model()
            user = user_model.objects.filter(username=DEMO_EMAIL).first()
            if user is None:
                user = user_model.objects.create_user(username=DEMO_EMAIL, email=DEMO_EMAIL, password=DEMO_PASSWORD)
            Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": Role.OWNER})
            with tenant_context(tenant):  # the demo tenant's rows, behind row-level security
                # Filled once, also in a demo seeded before tenants had one; later edits on the page stay.
                if not any(getattr(tenant, field) for field in SELLER):
                    tenant = tenant_seller_update(tenant=tenant, actor=actor, at=now, data=SELLER)
                existing = set(Customer.objects.filter(tenant=tenant).values_list("external_id", flat=True))
                for data in CUSTOMERS:
                    if data["external_id"] not in existing:
                        # Signed up before the history's first subscription (three months back), as
                        # their timelines then read.
                        customer = customer_create(
                            tenant=tenant,
                            actor=actor,
                            at=now - CUSTOMERS_SINCE,
                            **data,  # type: ignore[arg-type]
                        )
                        for field, value in ADDRESSES[customer.external_id].items():
                            setattr(customer, field, value)
                        customer.save(update_fields=list(ADDRESSES[customer.external_id]))
                if not tenant.iban:
                    # The demo's bank account, printed as the payment instructions of its invoices.
                    tenant.iban, tenant.bic = "FR7630006000011234567890189", "AGRIFRPPXXX"
                    tenant.save(update_fields=["iban", "bic"])
                if not Plan.objects.filter(tenant=tenant, code="smart-fleet").exists():
                    _seed_catalog(tenant, actor, now)
                history: History | None = None
                if settings.EMAIL_BACKEND in NON_SENDING_EMAIL_BACKENDS:
                    # The console backend prints the dunning reminders: on stderr, not amid this summary.
                    with redirect_stdout(sys.stderr):
                        history = billing_history_seed(tenant=tenant, actor=actor, now=now)
                recognized = _recognize_history(tenant=tenant, actor=actor, now=now) if history is not None else 0
                rates = _seed_rates(tenant=tenant, actor=actor, now=now)
                with redirect_stdout(sys.stderr):  # the support e-mails, printed by the console backend
                    _seed_portal(tenant=tenant, actor=actor, now=now)
                _seed_partner(tenant=tenant, actor=actor, now=now)
                statements = _seed_statements(tenant=tenant, actor=actor, now=now)
                new_key = None
                if created:
                    _, new_key = api_key_create(
                        tenant=tenant, name="Demo key", scope=ApiKeyScope.FULL, actor=actor, at=now
                    )
        self.stdout.write("Demo tenant: {} ({})".format(tenant.name, "created" if created else "already there"))
        self.stdout.write(_history_summary(history))
        if recognized:
            self.stdout.write(f"Revenue recognized for {recognized} months (Finance → Revenue)")
        if rates:
            self.stdout.write(f"Exchange rates entered for {rates} months (Analytics → Exchange rates)")
        if statements:
            self.stdout.write(
                f"AlpNet's commission statements built for {statements} months (Finance → Commission statements)"
            )
        self.stdout.write(f"Back-office login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
        self.stdout.write(
            "Customer portal: /portal/%s/login/ as %s (French) or %s (English), password %s"
            % (tenant.slug, PORTAL_USERS[0][1], PORTAL_USERS[1][1], DEMO_PORTAL_PASSWORD)
        )
        self.stdout.write(
            "Partner dashboard: /partners/%s/login/ as %s (AlpNet, French), password %s"
            % (tenant.slug, PARTNER_USER[0], DEMO_PARTNER_PASSWORD)
        )
        if new_key:
            self.stdout.write(f"Demo API key (shown once): {new_key}")
        # Last, so that it is on screen with the login: what bench/device_cloud.py (or a real device
        # cloud) signs its activation webhooks with, and what Tripod verifies them with.
        self.stdout.write(
            "Device-cloud secret (signs the device cloud's activation webhooks; Tripod verifies them with it): "
            + tenant.device_cloud_secrets[0]
        )


def _seed_portal(*, tenant: Tenant, actor: Actor, now: Any) -> None:
    """The customer portal as the demo's customers see it: the tenant's colour, two portal users,
    the fleet plan offered in the shop, and a billing question answered by the team."""
    if not tenant.brand_colour:
        tenant.brand_colour = "#0b7285"
        tenant.save(update_fields=["brand_colour"])
    if Plan.objects.filter(tenant=tenant, code="smart-fleet", self_service=False).exists():
        plan_update(tenant=tenant, actor=actor, at=now, code="smart-fleet", self_service=True)
    for external_id, email, name, role in PORTAL_USERS:
        customer = Customer.objects.get(tenant=tenant, external_id=external_id)
        if not PortalUser.objects.filter(tenant=tenant, email=email).exists():
            PortalUser.objects.create(
                tenant=tenant,
                customer=customer,
                email=email,
                name=name,
                role=role,
                password=make_password(DEMO_PORTAL_PASSWORD),
                invited_at=now,
                invited_by="seed_demo",
            )
    dupont = Customer.objects.get(tenant=tenant, external_id="dupont")
    invoice = (
        Invoice.objects.filter(tenant=tenant, customer=dupont, status=InvoiceStatus.FINALIZED, kind=InvoiceKind.INVOICE)
        .order_by("-issue_date")
        .first()
    )
    if invoice is not None and not SupportCase.objects.filter(tenant=tenant, customer=dupont).exists():
        user = PortalUser.objects.get(tenant=tenant, email=PORTAL_USERS[0][1])
        case = case_open(
            customer=dupont,
            subject="Nombre d'appareils sur la facture",
            body="Bonjour, nous avons retiré un traceur en cours de mois : est-il bien crédité ?",
            actor=Actor.portal_user(user),
            author_type="customer",
            at=now - timedelta(days=2),
            invoice=invoice,
        )
        message_add(
            case=case,
            body="Bonjour Claire, oui : le crédit figure sur la ligne « Crédit » de la facture.",
            actor=Actor.system("Support Smart Fleet"),
            author_type="staff",
            at=now - timedelta(days=1),
        )


def _seed_partner(*, tenant: Tenant, actor: Actor, now: Any) -> None:
    """AlpNet, the partner that sold to Transports Dupont, with its admin's dashboard login; the
    Smart Fleet plan offered to partners, so that AlpNet can subscribe its customers to it."""
    if Plan.objects.filter(tenant=tenant, code="smart-fleet", partner_visible=False).exists():
        plan_update(tenant=tenant, actor=actor, at=now, code="smart-fleet", partner_visible=True)
    partner = Partner.objects.filter(tenant=tenant, code=PARTNER["code"]).first()
    if partner is None:
        partner = partner_create(tenant=tenant, actor=actor, at=now - CUSTOMERS_SINCE, **PARTNER)
    customer = Customer.objects.get(tenant=tenant, external_id=PARTNER_CUSTOMER)
    if customer.partner_id is None:
        customer_update(
            tenant=tenant, actor=actor, at=now, external_id=customer.external_id, changes={"partner": partner}
        )
    email, name, role = PARTNER_USER
    if not PartnerUser.objects.filter(tenant=tenant, email=email).exists():
        PartnerUser.objects.create(
            tenant=tenant,
            partner=partner,
            email=email,
            name=name,
            role=role,
            password=make_password(DEMO_PARTNER_PASSWORD),
            invited_at=now,
            invited_by="seed_demo",
        )


def _seed_statements(*, tenant: Tenant, actor: Actor, now: Any) -> int:
    """AlpNet's commission statements of the months of the history that have ended, built as the 1st's
    schedule builds them, once: the older ones approved and the oldest paid, the last left a draft
    to approve. Returns how many months have a statement."""
    partner = Partner.objects.get(tenant=tenant, code=PARTNER["code"])
    if CommissionStatement.objects.filter(tenant=tenant, partner=partner).exists():
        return 0
    first = Invoice.objects.filter(tenant=tenant, customer__partner=partner).aggregate(first=Min("issue_date"))["first"]
    if first is None:
        return 0
    built = []
    month, current = month_first(first), current_month(tenant=tenant, at=now)
    while month < current:
        built += statements_build(tenant=tenant, month=month, actor=actor, at=now, partners=[partner])
        month = month_after(month)
    for statement in built[:-1]:
        statement_approve(statement=statement, actor=actor, at=now)
    if len(built) > 1:
        statement_mark_paid(
            statement=built[0], reference="VIR-ALPNET-%s" % built[0].month.strftime("%Y%m"), actor=actor, at=now
        )
    return len(built)


def _recognize_history(*, tenant: Tenant, actor: Actor, now: Any) -> int:
    """The history's months recognized by their recognition runs, as Finance → Revenue runs starts
    them (run here, in process), from the month of the first signature to the month before ``now``
    (the tenant's months), left open. Returns how many."""
    first = Subscription.objects.filter(tenant=tenant).aggregate(first=Min("signed_at"))["first"]
    if first is None:
        return 0
    month = local_date(first, tenant.timezone).replace(day=1)
    current = local_date(now, tenant.timezone).replace(day=1)
    months = 0
    while month < current:
        run = recognition_run_create(tenant=tenant, month=month, actor=actor, at=now)
        recognition_run_execute(run_id=run.pk, at=now)
        month, months = next_month(month), months + 1
    return months


# What one US dollar was worth in euros, by month of the year: the demo's finance team enters them
# as it would from its bank's monthly rates, so the dashboard and MRR report convert Pacific
# Haulage's dollars instead of flagging them missing.
USD_IN_EUR = (
    "0.9612",
    "0.9587",
    "0.9245",
    "0.9161",
    "0.8874",
    "0.8731",
    "0.8590",
    "0.8612",
    "0.8547",
    "0.8603",
    "0.8658",
    "0.8702",
)


def _seed_rates(*, tenant: Tenant, actor: Actor, now: Any) -> int:
    """A rate for each currency the customers use other than the tenant's, for each month from the
    first signature to the current one (the tenant's months) that has none yet. Returns how many
    (month, currency) rates it wrote."""
    first = Subscription.objects.filter(tenant=tenant).aggregate(first=Min("signed_at"))["first"]
    currencies = set(Customer.objects.filter(tenant=tenant).values_list("currency", flat=True))
    currencies &= {"USD"}  # the demo's one other currency, with its monthly rates above
    currencies.discard(tenant.default_currency)
    if first is None or not currencies:
        return 0
    known = {(r.month, r.currency) for r in exchange_rate_list(tenant=tenant)}
    month = local_date(first, tenant.timezone).replace(day=1)
    current = local_date(now, tenant.timezone).replace(day=1)
    rows = []
    while month <= current:
        for currency in sorted(currencies):
            if (month, currency) not in known:
                rows.append(
                    RateInput(month=month.strftime("%Y-%m"), currency=currency, rate=USD_IN_EUR[month.month - 1])
                )
        month = next_month(month)
    if rows:
        exchange_rates_set(tenant=tenant, rates=rows, actor=actor, at=now)
    return len(rows)


def _history_summary(history: History | None) -> str:
    if history is None:
        if settings.EMAIL_BACKEND not in NON_SENDING_EMAIL_BACKENDS:
            return "Billing history: not seeded, the e-mail backend %s would send its invoices and reminders" % (
                settings.EMAIL_BACKEND
            )
        return "Billing history: already there"
    counts = history.dunning.counts()
    return (
        "Billing history: {} invoices finalized, {} draft to review (Billing → Invoices), {} payments; "
        "dunning now: {} reminders, {} overdue, {} subscriptions suspended".format(
            history.invoices,
            history.drafts,
            history.payments,
            counts["reminders"],
            counts["overdue"],
            counts["suspensions"],
        )
    )


def _seed_catalog(tenant: Tenant, actor: Actor, now: Any) -> None:
    """The Smart Fleet offer of billing.md: ELD-200 in 12 instalments, 25.00 per active device,
    pooled data overage after 1024 MB per device; VAT 20 % in France."""
    for code, name, kind, ssp in (
        ("eld-200", "ELD-200 electronic logging device", "hardware", "240.00"),
        ("fleet-platform", "Fleet platform subscription", "service", "25.00"),
        ("data-overage", "Data overage", "usage", None),
        ("setup", "Fleet onboarding", "fee", "150.00"),
    ):
        product_create(
            tenant=tenant,
            actor=actor,
            at=now,
            code=code,
            name=name,
            kind=kind,
            ssp=[{"currency": "EUR", "amount": ssp}] if ssp else [],
        )
    meter_create(
        tenant=tenant,
        actor=actor,
        at=now,
        code="data_mb",
        name="Data (MB)",
        aggregation="sum",
        field="mb",
        dimensions=["device_type", "region"],
        time_bands={"peak": ["08:00", "20:00"]},
    )
    for country, rate in (("FR", "20"), ("SE", "25"), ("DE", "19")):
        tax_rate_set(tenant=tenant, actor=actor, at=now, country=country, tax_category="standard", rate=rate)
    plan_create(
        tenant=tenant,
        actor=actor,
        at=now,
        code="smart-fleet",
        name="Smart Fleet",
        commitment_months=12,
        components=[
            {"product": "eld-200", "kind": "hardware", "price": "240.00", "instalments": 12, "bill_on": "signature"},
            {
                "product": "fleet-platform",
                "kind": "service",
                "per_device": True,
                "starts_on": "activation",
                "charge": {"model": "flat", "amount": "25.00"},
            },
            {
                "product": "data-overage",
                "kind": "usage",
                "meter": "data_mb",
                "pooled": True,
                "included_per_device": 1024,
                "charge": {
                    "model": "graduated",
                    "tiers": [{"up_to": 10000, "unit_amount": "0.010"}, {"up_to": None, "unit_amount": "0.005"}],
                },
            },
        ],
        prices=[{"currency": "EUR"}],
    )
