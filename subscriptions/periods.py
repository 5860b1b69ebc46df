"""A subscription's dates: its billing day, the service period of its plan that contains an
instant, the start of the period open at an instant (before which usage is late), the end of its
commitment, when it stops (``subscription_end``) and which of its periods it still bills.

This is the one place that turns a subscription into periods (Lago's ``Subscriptions::DatesService``):
changes, ingestion, current usage and invoicing all ask here, so a yearly or quarterly plan has the
same periods everywhere. The calendar arithmetic itself (clamped months, local midnights) is
``billing_platform.periods``.
"""

from datetime import datetime, timedelta

from billing_platform.periods import (
    Period,
    add_months,
    clamp_day,
    interval_period_containing,
    local_date,
    local_midnight,
)
from catalog.models import INTERVAL_MONTHS, Interval, Plan
from subscriptions.models import Subscription, SubscriptionStatus

# Longer than any period of a plan (a year), leap day and time zones included: a subscription that
# ended longer ago than this bills no period any more (``subscription_billed_in``).
LONGEST_PERIOD = timedelta(days=368)


def _tz(subscription: Subscription) -> str:
    return subscription.customer.timezone


def subscription_billing_day(subscription: Subscription) -> int:
    """The customer's billing day, or, while it has none, the local day the subscription starts."""
    return subscription.customer.billing_day or local_date(subscription.starts_at, _tz(subscription)).day


def subscription_period_at(subscription: Subscription, *, at: datetime, plan: Plan | None = None) -> Period:
    """The service period of ``plan`` (the subscription's own plan when not given) that contains
    ``at``, for this subscription: periods of the plan's interval, from billing dates in the month the
    subscription started and every interval after it, in the customer's time zone."""
    plan = plan if plan is not None else subscription.plan
    return interval_period_containing(
        at,
        billing_day=subscription_billing_day(subscription),
        months=INTERVAL_MONTHS[Interval(plan.interval)],
        anchor=local_date(subscription.starts_at, _tz(subscription)),
        tz=_tz(subscription),
    )


def subscription_open_period_start(subscription: Subscription, *, at: datetime) -> datetime:
    """The start of the subscription's period open at ``at``. Usage from before it is late: the
    invoice of its period may exist already, so it is billed as an adjustment. The period is that of
    the subscription's own plan: on 20 May, for a quarterly plan whose quarter began on 1 April, an
    April event is not late and a March one is."""
    return subscription_period_at(subscription, at=at).start


def _months_later(instant: datetime, months: int, tz: str) -> datetime:
    day = local_date(instant, tz)
    year, month = add_months(day.year, day.month, months)
    return local_midnight(clamp_day(year, month, day.day), tz)


def commitment_end(subscription: Subscription) -> datetime | None:
    """The end of the plan's commitment: ``commitment_months`` after the subscription starts, at
    local midnight of the same day of the month (clamped: 31 January + 1 month is 28 February); None
    when the plan has no commitment."""
    months = subscription.plan.commitment_months
    if not months:
        return None
    return _months_later(subscription.starts_at, months, _tz(subscription))


def subscription_end(subscription: Subscription) -> datetime | None:
    """When the subscription stops: when it ended, once it has; before that, the earliest of a
    cancellation scheduled at a period end (``cancel_at``) and, for a subscription that does not
    renew (``auto_renew: false``), the end of its commitment. None while it goes on: with
    ``auto_renew`` it continues period after period once its commitment is over (billing.md). No
    in-advance fee is billed for a period that starts at or after it."""
    if subscription.ended_at is not None:
        return subscription.ended_at
    ends = [subscription.cancel_at, None if subscription.auto_renew else subscription.commitment_ends_at]
    return min((end for end in ends if end is not None), default=None)


def subscription_billed_in(subscription: Subscription, period: Period) -> bool:
    """Does the subscription bill ``period``, one of its periods? While it is live, yes. Once it has
    ended, only the period during which it ended: the invoice that closes that period bills the usage
    up to the end and the credits of the end; no period after it is billed."""
    if subscription.status in SubscriptionStatus.LIVE:
        return True
    return subscription.ended_at is not None and subscription.ended_at > period.start


__all__ = [
    "LONGEST_PERIOD",
    "commitment_end",
    "subscription_billed_in",
    "subscription_billing_day",
    "subscription_end",
    "subscription_open_period_start",
    "subscription_period_at",
]
