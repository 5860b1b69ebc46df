"""usage_settings_update: the late-event age limit and the per-key rate limit, validated and audited."""

from datetime import UTC, datetime

import pytest

from tenancy.actors import Actor
from tenancy.errors import InvalidTenantSettings
from tenancy.models import AuditLogEntry, Tenant
from usage.models import UsageSettings
from usage.services import usage_settings_get, usage_settings_update

pytestmark = pytest.mark.django_db

AT = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
ACTOR = Actor.system("tests")


def test_a_change_is_saved_and_audited_and_defaults_are_read_without_a_write(tenant: Tenant) -> None:
    assert (usage_settings_get(tenant=tenant).max_event_age_days, UsageSettings.objects.count()) == (62, 0)
    usage_settings_update(
        tenant=tenant, actor=ACTOR, at=AT, data={"max_event_age_days": 90, "rate_limit_per_second": 100}
    )
    settings = UsageSettings.objects.get(tenant=tenant)
    assert (settings.max_event_age_days, settings.rate_limit_per_second) == (90, 100)
    entry = AuditLogEntry.objects.get(tenant=tenant, action="usage_settings.updated")
    assert (entry.before, entry.after) == ({"max_event_age_days": 62}, {"max_event_age_days": 90})


@pytest.mark.parametrize(
    ("data", "errors", "message"),
    [
        ({"max_event_age_days": 0}, [("max_event_age_days", "out_of_range")], "between 1 and 366"),
        ({"max_event_age_days": 367}, [("max_event_age_days", "out_of_range")], "between 1 and 366"),
        ({"rate_limit_per_second": 10_001}, [("rate_limit_per_second", "out_of_range")], "between 1 and 10000"),
        ({"rate_limit_per_second": "5"}, [("rate_limit_per_second", "invalid_type")], "must be a whole number"),
        ({"max_event_age_days": True}, [("max_event_age_days", "invalid_type")], "must be a whole number"),
        ({"retention": 3}, [("retention", "not_editable")], "retention is not a usage setting"),
    ],
)
def test_bad_values_are_refused_precisely(
    tenant: Tenant, data: dict[str, object], errors: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(InvalidTenantSettings, match=message) as raised:
        usage_settings_update(tenant=tenant, actor=ACTOR, at=AT, data=data)
    assert [(e.field, e.code) for e in raised.value.errors] == errors
    assert not UsageSettings.objects.exists()
    assert not AuditLogEntry.objects.exists()
