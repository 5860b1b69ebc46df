"""Invoicing a shop order at once (portal.md, "Shop"): what is due at signature, the hardware billed
at signature (its first instalment when it is paid in instalments) and the one-time fees due at
signature, is invoiced and finalized right after the order, for the customer to pay at checkout.
Service fees and usage are left to the bill runs, which never bill those lines again:

- hardware: each slot keeps the invoice that billed its first instalment
  (``Device.hardware_invoiced_by``), and the bill runs bill the next ones, instalment k + 1 on the
  k-th billing date after the signature (``invoicing.fees.hardware_fee_lines``);
- one-time fees: written to the charge ledger as any invoice's are, which the bill runs read
  (``subscriptions.ledger.one_time_fees_billed``).

Voiding the order's invoice gives both back to the next bill run.

240.00 per device, paid at once, 2 slots, VAT 20 %: 2 x 240.00 = 480.00, VAT 96.00, total 576.00
now; the next billing date bills no hardware. In 12 instalments: 2 x 20.00 = 40.00 now, instalment
2 of 12 on the first billing date.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from djmoney.money import Money

from billing_platform.money import allocate, round_minor
from billing_platform.periods import local_date, local_midnight
from catalog.charge_models.instalments import instalment_amounts
from catalog.models import BillOn, Plan, ProductKind, StartsOn
from catalog.quotes import price_quote
from catalog.taxes import QuoteLine, TaxLine, customer_tax_parties, document_taxes, tax_rate_table
from catalog.versions import ResolvedPrice, component_prices_as_of, customer_price_book
from customers.models import Customer
from invoicing.composition import Composition
from invoicing.lines import DraftLine, LineType
from invoicing.models import Invoice, InvoiceLine, InvoiceStatus
from invoicing.services.generation import invoices_write
from invoicing.services.lifecycle import invoices_finalize_locked
from invoicing.services.settings import invoicing_settings_get
from subscriptions.errors import OrderAlreadyPlaced
from subscriptions.ledger import LedgerEntry, one_time_fees_record
from subscriptions.models import ChargeKind, ChargeSource, Device, Order, Subscription
from subscriptions.orders import order_place, order_slots
from subscriptions.periods import subscription_period_at
from tenancy.actors import Actor


def order_place_and_invoice(
    *,
    customer: Customer,
    plan: Plan,
    quantity: int,
    shipping_address: dict[str, Any],
    actor: Actor,
    at: datetime,
    request_key: str = "",
    channel: str = "shop",
) -> tuple[Order, Invoice | None]:
    """Place the order (``subscriptions.orders.order_place``) and invoice what is due at signature
    at once, in one transaction: the shop's checkout. The invoice is ``None`` when nothing is due at
    signature (hardware billed at shipment or activation, no setup fee). The same ``request_key``
    again (a confirmation sent twice) places nothing: the order it placed is returned, with its
    invoice."""
    try:
        with transaction.atomic():
            order = order_place(
                customer=customer,
                plan=plan,
                quantity=quantity,
                shipping_address=shipping_address,
                actor=actor,
                at=at,
                request_key=request_key,
                channel=channel,
            )
            invoice = order_invoice(order=order, actor=actor, at=at)
    except OrderAlreadyPlaced as exc:
        placed: Order = exc.order
        return placed, Invoice.objects.filter(order=placed).exclude(status=InvoiceStatus.VOID).first()
    return order, invoice


@dataclass(frozen=True)
class OrderPreview:
    """What an order would cost, before it is placed: what is invoiced at once (the lines due at
    signature and their taxes), and the service fees each period once the devices are active."""

    plan: Plan
    quantity: int
    currency: str
    now_lines: list[DraftLine]
    now_taxes: list[TaxLine]
    now_net: Money
    now_total: Money
    period_lines: list[QuoteLine]  # service fees per period, all devices active
    period_net: Money


def order_preview(*, customer: Customer, plan: Plan, quantity: int, at: datetime) -> OrderPreview:
    """The shop's confirmation step: the lines ``order_invoice`` would bill at once for ``quantity``
    devices ordered at ``at`` (with taxes), and the service fees of a period once they are all active
    (the price calculator's lines, ``catalog.quotes.price_quote``). Writes nothing; a plan with no
    price for the customer raises the catalog's ``NoPriceForCurrency``."""
    currency = customer.currency
    tz = customer.timezone
    starts_at = local_midnight(local_date(at, tz), tz)
    prices = component_prices_as_of(
        plan=plan,
        currency=currency,
        country=customer.country,
        at=starts_at,
        customer_id=customer.pk,
        price_book=customer_price_book(customer),
    )
    lines = order_signature_lines(subscription=None, slots=quantity, prices=prices, currency=currency)
    taxes: list[TaxLine] = []
    if lines:
        decided = document_taxes(
            parties=customer_tax_parties(customer),
            lines=lines,
            table=tax_rate_table(tenant=customer.tenant, countries={customer.country}),
            on=local_date(at, tz),
            currency=currency,
            language=customer.language,
        )
        taxes = decided.taxes
    net = sum((x.signed_amount for x in lines), Decimal(0))
    quote = price_quote(
        tenant=customer.tenant, plan=plan, currency=currency, devices=quantity, usage=[], at=at, customer=customer
    )
    services = [x for x in quote.lines if x.type == "service"]
    return OrderPreview(
        plan=plan,
        quantity=quantity,
        currency=currency,
        now_lines=lines,
        now_taxes=taxes,
        now_net=Money(net, currency),
        now_total=Money(net + sum((t.amount for t in taxes), Decimal(0)), currency),
        period_lines=services,
        period_net=Money(sum((x.amount for x in services), Decimal(0)), currency),
    )


def order_signature_lines(
    *, subscription: Subscription | None, slots: int, prices: list[ResolvedPrice], currency: str
) -> list[DraftLine]:
    """The lines due at signature for ``slots`` devices: hardware billed at signature (the first
    instalment of each slot) and the one-time fees of the signature (per device, or once). The shop
    shows them before the order is confirmed; ``order_invoice`` bills them."""
    lines: list[DraftLine] = []
    for r in prices:
        c = r.component
        if r.price is None:
            continue
        if c.kind == ProductKind.HARDWARE and c.bill_on == BillOn.SIGNATURE and slots:
            first = instalment_amounts(r.price, c.instalments, currency)[0]
            lines.append(
                DraftLine(
                    type=LineType.HARDWARE,
                    product_code=c.product.code,
                    product_name=c.product.name,
                    qualifiers={"instalment": 1, "of": c.instalments} if c.instalments > 1 else {},
                    quantity=Decimal(slots),
                    unit_amount=first,
                    amount=round_minor(first * slots, currency),
                    precise_amount=first * slots,
                    tax_category=c.product.tax_category,
                    detail={"instalment": 1, "instalments": c.instalments, "source": r.source},
                    subscription=subscription,
                )
            )
        elif c.kind == ProductKind.FEE and c.starts_on == StartsOn.SUBSCRIPTION_START:
            quantity = slots if c.per_device else 1
            if not quantity:
                continue
            lines.append(
                DraftLine(
                    type=LineType.FEE,
                    product_code=c.product.code,
                    product_name=c.product.name,
                    quantity=Decimal(quantity),
                    unit_amount=r.price,
                    amount=round_minor(r.price * quantity, currency),
                    precise_amount=r.price * quantity,
                    tax_category=c.product.tax_category,
                    detail={"source": r.source, "starts_on": c.starts_on, "per_device": c.per_device},
                    subscription=subscription,
                )
            )
    return lines


def order_invoice(*, order: Order, actor: Actor, at: datetime) -> Invoice | None:
    """Write and finalize the invoice of what ``order`` owes at signature, dated the day of ``at`` in
    the customer's zone, inside the caller's transaction; ``None`` when nothing is due then. Its
    hardware and fees are marked billed, so that no bill run bills them again."""
    subscription = order.subscription
    customer = order.customer
    currency = customer.currency
    slots = [d for d in order_slots(order) if d.added_at <= at]
    prices = component_prices_as_of(
        plan=subscription.plan,
        currency=currency,
        country=customer.country,
        at=subscription.starts_at,
        customer_id=customer.pk,
        locked=subscription,
        price_book=customer_price_book(customer),
    )
    lines = order_signature_lines(subscription=subscription, slots=len(slots), prices=prices, currency=currency)
    if not lines:
        return None
    issue_date = local_date(at, customer.timezone)
    decided = document_taxes(
        parties=customer_tax_parties(customer),
        lines=lines,
        table=tax_rate_table(tenant=customer.tenant, countries={customer.country}),
        on=issue_date,
        currency=currency,
        language=customer.language,
    )
    lines = [_with_vat(x, decided.vat_category(x)) for x in lines]
    net = sum((x.signed_amount for x in lines), Decimal(0))
    tax = sum((t.amount for t in decided.taxes), Decimal(0))
    composition = Composition(
        customer,
        issue_date,
        # The fees' ledger rows are written below, one per slot for a fee per device: the lines go
        # to the writer without their source, which would write one row per line.
        [_without_source(x) for x in lines],
        Money(net, currency),
        decided.taxes,
        Money(tax, currency),
        Money(net + tax, currency),
        [subscription],
        {subscription.pk: []},
    )
    settings = invoicing_settings_get(tenant=customer.tenant)
    [invoice] = invoices_write([composition], bill_run=None, at=at, finalize_with=None)
    invoice.order = order
    invoice.save(update_fields=["order"])
    InvoiceLine.objects.filter(invoice=invoice, type=LineType.FEE).update(source=ChargeSource.ONE_TIME)
    _fees_record(invoice, subscription, slots, lines, at)
    if any(x.type == LineType.HARDWARE for x in lines):
        Device.objects.filter(pk__in=[d.pk for d in slots]).update(hardware_invoiced_by=invoice.pk)
    invoices_finalize_locked([invoice], settings=settings, actor=actor, at=at)
    return invoice


def _with_vat(line: DraftLine, vat_category: str) -> DraftLine:
    return replace(line, vat_category=vat_category)


def _without_source(line: DraftLine) -> DraftLine:
    return replace(line, source=None)


def _fees_record(
    invoice: Invoice, subscription: Subscription, slots: list[Device], lines: list[DraftLine], at: datetime
) -> None:
    """The one-time fees billed, in the charge ledger: one row for a fee per subscription, one per
    slot for a fee per device (its share, the parts adding up to the line)."""
    components = {c.product.code: c for c in subscription.plan.components.all() if c.kind == ProductKind.FEE}
    tz = subscription.customer.timezone
    period = subscription_period_at(subscription, at=local_midnight(local_date(at, tz), tz))
    entries = []
    for line in lines:
        component = components.get(line.product_code)
        if line.type != LineType.FEE or component is None:
            continue
        payers: list[Any] = [d.pk for d in slots] if component.per_device else [None]
        shares = allocate(line.amount, [Decimal(1)] * len(payers), invoice.currency)
        for device_pk, share in zip(payers, shares, strict=True):
            entries.append(
                LedgerEntry(
                    subscription=subscription,
                    component=component,
                    device_id=device_pk,
                    kind=ChargeKind.CHARGE,
                    source=ChargeSource.ONE_TIME,
                    period=period,
                    covered=period,
                    amount=share,
                    currency=invoice.currency,
                    invoiced_at=at,
                    invoiced_by=invoice.pk,
                )
            )
    one_time_fees_record(entries)
