"""Amount columns read and written as django-money's ``Money``, in the currency column their row
already has.

An invoice has one currency and four amounts (net, tax, total, due); a price override has one
currency and three. django-money's ``MoneyField`` gives every amount a currency column of its own
(``total_currency``...), which would let the amounts of one invoice disagree on their currency and
would change the schema. ``SharedCurrencyMoneyField`` keeps the amount a plain ``numeric`` column
and takes its currency from the row's existing ``currency`` column instead:

- reading gives ``Money(amount, row.currency)`` (``None`` for a null amount);
- writing takes a ``Money`` in the row's currency, or a bare ``Decimal`` that is in the row's
  currency by definition (as rows are read from the database, and as bulk writers build them);
  a ``Money`` in another currency is refused (``CurrencyMismatch``): one amount never silently
  changes the currency of the others. A row without a currency yet takes the ``Money``'s.

Queries are unchanged: the column holds a decimal, so ``filter(total__gt=...)``, aggregates,
``values()`` and ``update()`` see decimals, as before. The model's ``MoneyManager`` also accepts a
``Money`` in a filter (``filter(total=Money(10, "EUR"))`` filters on the row's currency too).
"""

from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.expressions import BaseExpression, Combinable
from djmoney.models.fields import MoneyField, MoneyFieldProxy
from djmoney.models.managers import add_money_comprehension_to_queryset
from djmoney.money import Money
from moneyed import Money as BaseMoney

_M = TypeVar("_M", bound=models.Model)


class CurrencyMismatch(ValueError):
    """A ``Money`` written to an amount column of a row in another currency."""


class SharedCurrencyMoney(MoneyFieldProxy):
    """The attribute of a ``SharedCurrencyMoneyField``: the stored amount (a ``Decimal``, or an
    expression being saved) lives in ``instance.__dict__``; the ``Money`` is made when it is read,
    in the currency the row has then."""

    field: "SharedCurrencyMoneyField"

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        data = obj.__dict__
        name = self.field.attname
        if name not in data:  # deferred (``.only()``/``.defer()``): loaded as Django loads any field
            obj.refresh_from_db(fields=[name])
        amount = data[name]
        if amount is None or isinstance(amount, BaseExpression):
            return amount
        return Money(amount, getattr(obj, self.currency_field_name))

    def __set__(self, obj: Any, value: Any) -> None:
        name = self.field.attname
        if type(value) is Decimal or value is None or isinstance(value, BaseExpression):
            obj.__dict__[name] = value
            return
        if isinstance(value, BaseMoney):
            code, currency = value.currency.code, self.currency_field_name
            row = obj.__dict__[currency] if currency in obj.__dict__ else getattr(obj, currency)
            if not row:
                setattr(obj, currency, code)
            elif row != code:
                raise CurrencyMismatch(
                    "%s.%s is in %s: a %s amount cannot be written to it." % (type(obj).__name__, name, row, code)
                )
            value = value.amount
        obj.__dict__[name] = self.field.to_python(value)


class SharedCurrencyMoneyField(MoneyField):
    """A ``numeric`` amount column whose currency is the row's ``currency_field_name`` column
    (``"currency"``), which the model declares before it. Sized like any other amount
    (``max_digits``, ``decimal_places``); ``default`` is an amount in the row's currency (``0``).
    The database column is exactly a ``DecimalField``'s. The model's manager is a ``MoneyManager``."""

    _pyi_private_set_type: Money | Decimal | int | str | Combinable  # type: ignore[assignment]
    _pyi_private_get_type: Money  # type: ignore[assignment]
    _pyi_lookup_exact_type: Money | str | int | Decimal  # type: ignore[assignment]

    def __init__(self, *args: Any, currency_field_name: str = "currency", **kwargs: Any) -> None:
        kwargs.update(currency_field_name=currency_field_name, money_descriptor_class=SharedCurrencyMoney)
        super().__init__(*args, **kwargs)

    def setup_default(self, default: Any, default_currency: Any, nullable: bool) -> Any:
        # The default is an amount (0) in whatever currency the row has; django-money would want a
        # currency for it, which a shared column does not have on its own.
        return default

    def contribute_to_class(self, cls: type[models.Model], name: str, private_only: bool = False) -> None:
        # The currency column is the model's own, declared before the amounts: fields are added in
        # the order they are declared, so it is already there. Unlike django-money's field, nothing
        # is added, and the model's manager is not replaced at run time (it is a MoneyManager).
        self.currency_field = next((f for f in cls._meta.local_fields if f.name == self.currency_field_name), None)
        if self.currency_field is None:
            raise ImproperlyConfigured(
                "%s.%s: declare the currency column %r before the amounts that use it."
                % (cls.__name__, name, self.currency_field_name)
            )
        models.DecimalField.contribute_to_class(self, cls, name, private_only)
        setattr(cls, self.name, self.money_descriptor_class(self))

    def formfield(self, **kwargs: Any) -> Any:
        # The amount alone (a decimal input): its currency is the row's currency field's, chosen
        # there once, not beside each amount as django-money's form field would offer.
        return models.DecimalField.formfield(self, **kwargs)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        # The stored amount as it is (saves and bulk writes): no Money is made only to be taken apart.
        data = model_instance.__dict__
        return data[self.attname] if self.attname in data else super().pre_save(model_instance, add)

    def value_from_object(self, obj: models.Model) -> Any:
        # What forms show and serializers dump: the amount, beside the row's own currency field.
        value = super().value_from_object(obj)
        return value.amount if isinstance(value, BaseMoney) else value


class MoneyManager(models.Manager[_M]):
    """The manager of a model with ``SharedCurrencyMoneyField`` amounts: a filter also accepts a
    ``Money``, and then compares the row's currency too (``filter(total__gte=Money(100, "EUR"))``
    is ``filter(total__gte=100, currency="EUR")``), as django-money's managers do."""

    def get_queryset(self) -> models.QuerySet[_M]:
        return add_money_comprehension_to_queryset(super().get_queryset())


def amount_field(**kwargs: Any) -> SharedCurrencyMoneyField:
    """An amount column at the project's money precision (``MONEY_MAX_DIGITS``,
    ``MONEY_DECIMAL_PLACES``), in the row's ``currency``."""
    return SharedCurrencyMoneyField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES, **kwargs
    )
