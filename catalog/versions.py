"""Prices "as of" an instant: override > partner price book > region book > default book, the
latest version in effect.

A new version with ``effective_from`` changes the price of every billing period that starts on or
after that instant, so billing code passes the period's start as ``at``.

A version with a ``price_book`` belongs to that named book (a partner's wholesale prices) and prices
only the customers of a partner whose ``price_book`` is that name (``customer_price_book``): inside
the book, a version listing the customer's country beats the book's version without regions. A
customer of a book with no version in effect for the plan and currency falls back to the region and
default books, which never include book versions.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from django.db.models import prefetch_related_objects
from djmoney.money import Money

from catalog.errors import NoPriceForCurrency
from catalog.models import ComponentPrice, Plan, PlanComponent, PriceOverride, PriceVersion
from customers.models import Customer


class Locked(Protocol):
    """A subscription's price lock: the version it was sold at, kept until its commitment ends."""

    price_locked: bool
    locked_price_version_id: Any
    commitment_ends_at: datetime | None


@dataclass(frozen=True)
class ResolvedPrice:
    """A component's price as rating uses it: amounts in the currency it was resolved in (a price
    version's, or the customer's for an override), as ``Decimal``."""

    component: PlanComponent
    source: str  # "override" | "locked" | "partner" | "region" | "default"
    version: PriceVersion | None
    price: Decimal | None
    charge: dict[str, Any] | None
    min_amount: Decimal | None
    max_amount: Decimal | None


def _amount(value: Money | None) -> Decimal | None:
    return None if value is None else value.amount


def _in_effect(effective_from: datetime | None, at: datetime) -> bool:
    return effective_from is None or effective_from <= at


def _latest(versions: list[PriceVersion]) -> PriceVersion | None:
    # A null effective_from means "from the beginning": it sorts before every dated version.
    return max(versions, key=lambda v: (v.effective_from is not None, v.effective_from or v.created_at), default=None)


def customer_price_book(customer: Customer) -> str:
    """The price book that prices ``customer``: its partner's (``Partner.price_book``), or "" for a
    direct customer or a partner without a book. Reads the partner unless it is loaded
    (``customers_partners_load`` loads those of many customers in one query)."""
    if customer.partner_id is None:
        return ""
    return customer.partner.price_book if customer.partner is not None else ""


def customers_partners_load(customers: Iterable[Customer]) -> None:
    """Loads the partners of ``customers`` not loaded yet, in one query (none when no customer has a
    partner), so that ``customer_price_book`` reads none."""
    prefetch_related_objects([c for c in customers if c.partner_id is not None], "partner")


def override_rank(override: PriceOverride) -> tuple[bool, datetime]:
    """The order in which a customer's overrides of one component take over, as versions do: one
    with no ``effective_from`` ("from the beginning") first, then the dated ones by their date (the
    latest in effect wins)."""
    return (override.effective_from is not None, override.effective_from or override.created_at)


class PriceBook:
    """The price versions, component prices and customer overrides of some plans, read once and
    resolved "as of" any instant in memory: a bill run loads one book per chunk of customers
    (three queries) instead of three queries per subscription and period."""

    def __init__(
        self,
        versions: Iterable[PriceVersion],
        prices: Iterable[ComponentPrice],
        overrides: Iterable[PriceOverride],
    ) -> None:
        self._versions: dict[tuple[Any, str], list[PriceVersion]] = defaultdict(list)
        for version in versions:
            self._versions[(version.plan_id, version.currency)].append(version)
        self._prices: dict[Any, dict[Any, ComponentPrice]] = defaultdict(dict)
        for p in prices:
            self._prices[p.version_id][p.component_id] = p
        self._overrides: dict[tuple[Any, str], list[PriceOverride]] = defaultdict(list)
        for o in overrides:
            self._overrides[(o.customer_id, o.currency)].append(o)
        self._resolved: dict[tuple[Any, ...], list[ResolvedPrice]] = {}

    @classmethod
    def load(
        cls, *, plan_ids: Iterable[Any], currencies: Iterable[str], customer_ids: Iterable[Any] = ()
    ) -> "PriceBook":
        plan_ids, currencies, customer_ids = set(plan_ids), set(currencies), set(customer_ids)
        versions = list(PriceVersion.objects.filter(plan_id__in=plan_ids, currency__in=currencies))
        prices = ComponentPrice.objects.filter(version__in=versions) if versions else []
        overrides = (
            PriceOverride.objects.filter(
                customer_id__in=customer_ids, component__plan_id__in=plan_ids, currency__in=currencies
            )
            if customer_ids
            else []
        )
        return cls(versions, prices, overrides)

    def version_as_of(
        self, *, plan: Plan, currency: str, country: str | None, at: datetime, price_book: str = ""
    ) -> tuple[PriceVersion, str]:
        """The version pricing ``plan`` in ``currency`` at ``at``: the partner's ``price_book`` (its
        version listing ``country``, else its version without regions) beats a region book listing
        ``country``, which beats the default book. Raises ``NoPriceForCurrency`` when none exists."""
        in_effect = [v for v in self._versions.get((plan.pk, currency), ()) if _in_effect(v.effective_from, at)]
        if price_book:
            in_book = [v for v in in_effect if v.price_book == price_book]
            chosen = _latest([v for v in in_book if country and country in v.regions]) or _latest(
                [v for v in in_book if not v.regions]
            )
            if chosen is not None:
                return chosen, "partner"
        candidates = [v for v in in_effect if not v.price_book]
        if country:
            regional = _latest([v for v in candidates if country in v.regions])
            if regional is not None:
                return regional, "region"
        default = _latest([v for v in candidates if not v.regions])
        if default is None:
            raise NoPriceForCurrency(
                "Plan %s has no price in %s in effect on %s." % (plan.code, currency, at.date().isoformat()),
                code=NoPriceForCurrency.code,
                extra={"plan": plan.code, "currency": currency},
            )
        return default, "default"

    def _locked_version(self, plan: Plan, currency: str, at: datetime, locked: "Locked | None") -> PriceVersion | None:
        if locked is None or not locked.price_locked or locked.locked_price_version_id is None:
            return None
        if locked.commitment_ends_at is not None and at >= locked.commitment_ends_at:
            return None  # renewed: the versions in effect apply again
        return next(
            (v for v in self._versions.get((plan.pk, currency), ()) if v.pk == locked.locked_price_version_id),
            None,
        )

    def _overrides_of(self, customer_id: Any, plan: Plan, currency: str, at: datetime) -> dict[Any, PriceOverride]:
        components = {c.pk for c in plan.components.all()}
        chosen: dict[Any, PriceOverride] = {}
        for override in self._overrides.get((customer_id, currency), ()):
            if override.component_id not in components or not _in_effect(override.effective_from, at):
                continue
            current = chosen.get(override.component_id)
            if current is None or override_rank(override) > override_rank(current):
                chosen[override.component_id] = override
        # A row with neither price nor charge ends the override: the books price the component again.
        return {pk: o for pk, o in chosen.items() if o.price is not None or o.charge is not None}

    def resolve(
        self,
        *,
        plan: Plan,
        currency: str,
        country: str | None,
        at: datetime,
        customer_id: Any = None,
        locked: Locked | None = None,
        price_book: str = "",
    ) -> list[ResolvedPrice]:
        """Every component's price at ``at``: customer override > the version a price-locked
        subscription was sold at (``locked``, until its renewal) > the partner's ``price_book`` >
        region book > default book."""
        overrides = self._overrides_of(customer_id, plan, currency, at) if customer_id is not None else {}
        locked_version = self._locked_version(plan, currency, at, locked)
        # Customers without overrides on the same plan, country, book, lock and instant share one resolution.
        key = (plan.pk, currency, country, price_book, at, customer_id if overrides else None, locked_version)
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        if locked_version is not None:
            version, source = locked_version, "locked"
        else:
            version, source = self.version_as_of(
                plan=plan, currency=currency, country=country, at=at, price_book=price_book
            )
        prices = self._prices.get(version.pk, {})
        resolved = []
        for component in plan.components.all():
            chosen = overrides.get(component.pk)
            if chosen is not None:
                resolved.append(
                    ResolvedPrice(
                        component,
                        "override",
                        version,
                        _amount(chosen.price),
                        chosen.charge,
                        _amount(chosen.min_amount),
                        _amount(chosen.max_amount),
                    )
                )
                continue
            price = prices.get(component.pk)
            if price is None:
                raise NoPriceForCurrency(
                    "Price version %s of plan %s has no price for %s." % (version.pk, plan.code, component.product.code)
                )
            resolved.append(
                ResolvedPrice(component, source, version, price.price, price.charge, price.min_amount, price.max_amount)
            )
        self._resolved[key] = resolved
        return resolved


def price_version_as_of(
    *, plan: Plan, currency: str, country: str | None, at: datetime, price_book: str = ""
) -> tuple[PriceVersion, str]:
    """The version pricing ``plan`` in ``currency`` at ``at`` (see ``PriceBook.version_as_of``)."""
    book = PriceBook(PriceVersion.objects.filter(plan=plan, currency=currency), (), ())
    return book.version_as_of(plan=plan, currency=currency, country=country, at=at, price_book=price_book)


def component_prices_as_of(
    *,
    plan: Plan,
    currency: str,
    country: str | None,
    at: datetime,
    customer_id: Any = None,
    locked: Locked | None = None,
    price_book: str = "",
) -> list[ResolvedPrice]:
    """Every component's price at ``at`` (see ``PriceBook.resolve``). Three queries, whatever the size."""
    book = PriceBook.load(plan_ids=[plan.pk], currencies=[currency], customer_ids=[customer_id] if customer_id else [])
    return book.resolve(
        plan=plan,
        currency=currency,
        country=country,
        at=at,
        customer_id=customer_id,
        locked=locked,
        price_book=price_book,
    )
