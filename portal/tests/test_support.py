"""The portal's Support pages: a customer's cases, opening one (from an invoice too), the
conversation and replies, the team's answer e-mailed to the portal users; never another customer's."""

from typing import Any

import pytest
from django.core import mail

from customers.models import PortalRole
from customers.tests.factories import dupont
from support.models import SupportCase
from support.services import case_open, message_add
from support.tests.factories import OPENED, STAFF_ACTOR, customer_with_invoice
from tenancy.actors import Actor
from tenancy.models import Role, Tenant

pytestmark = pytest.mark.django_db


def test_a_viewer_opens_a_case_from_an_invoice(
    tenant: Tenant, portal_client: Any, make_staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given: Dupont's invoice, a viewer of its account, Acme's support agent
    customer, invoice = customer_with_invoice(tenant)
    make_staff(tenant, Role.SUPPORT_AGENT, "agent@acme.test")
    client = portal_client(customer, role=PortalRole.VIEWER)
    # when: the invoice's page links to the form with the invoice
    page = client.get(f"/portal/support/?invoice={invoice.pk}")
    assert page.status_code == 200
    assert page.context["form"].initial == {"invoice": str(invoice.pk)}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/portal/support/",
            {"subject": "Line 1 is wrong", "invoice": str(invoice.pk), "body": "3 devices, not 4."},
        )
    # then
    case = SupportCase.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/portal/support/{case.pk}/"
    assert (case.customer_id, case.invoice_id, case.status, case.opened_by_type) == (
        customer.pk,
        invoice.pk,
        "open",
        "customer",
    )
    assert case.opened_by_label == "%s <%s>" % (client.portal_user.name, client.portal_user.email)
    assert [m.to for m in mail.outbox] == [["agent@acme.test"]]
    listing = client.get("/portal/support/").content.decode()
    assert "Line 1 is wrong" in listing


def test_the_team_answer_reaches_the_portal_users_and_they_reply(
    tenant: Tenant, portal_client: Any, make_portal_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # given: two active portal users of Dupont (one English), one deactivated, and a case
    customer, _ = customer_with_invoice(tenant)
    client = portal_client(customer, user=make_portal_user(customer, email="marie@dupont.test", name="Marie"))
    make_portal_user(customer, email="john@dupont.test", language="en")
    make_portal_user(customer, email="gone@dupont.test", is_active=False)
    case = case_open(
        customer=customer,
        subject="Payment terms",
        body="Can we pay at 60 days?",
        actor=Actor.portal_user(client.portal_user),
        author_type="customer",
        at=OPENED,
    )
    # when: the team answers
    with django_capture_on_commit_callbacks(execute=True):
        message_add(case=case, body="Yes, from June.", actor=STAFF_ACTOR, author_type="staff", at=OPENED)
    # then: each active user, in its language (Dupont's is French); not the customer's own address
    assert sorted((m.to, m.subject) for m in mail.outbox) == [
        (["john@dupont.test"], "Acme Telematics answered: Payment terms"),
        (["marie@dupont.test"], "Acme Telematics a répondu : Payment terms"),
    ]
    # the conversation shows the answer, and the reply puts the case back open
    page = client.get(f"/portal/support/{case.pk}/").content.decode()
    assert "Yes, from June." in page
    response = client.post(f"/portal/support/{case.pk}/", {"body": "Thank you."})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == "open"
    assert case.messages.order_by("-at", "-id")[0].author_label == "Marie <marie@dupont.test>"
    # an empty reply is a form error
    response = client.post(f"/portal/support/{case.pk}/", {"body": " "})
    assert response.status_code == 422
    assert response.context["form"].errors["body"]


def test_without_portal_users_the_customer_email_gets_the_answer(
    tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    customer, _ = customer_with_invoice(tenant)
    case = case_open(customer=customer, subject="Q", body="?", actor=STAFF_ACTOR, author_type="customer", at=OPENED)
    with django_capture_on_commit_callbacks(execute=True):
        message_add(case=case, body="A", actor=STAFF_ACTOR, author_type="staff", at=OPENED)
    assert [m.to for m in mail.outbox] == [[customer.email]]


def test_another_customers_case_and_invoice_are_404(tenant: Tenant, portal_client: Any) -> None:
    # given: a case of customer "dupont" about its invoice; a portal user of another customer
    durand, durand_invoice = customer_with_invoice(tenant)
    theirs = case_open(
        customer=durand,
        subject="Secret",
        body="Secret question",
        actor=STAFF_ACTOR,
        author_type="customer",
        at=OPENED,
        invoice=durand_invoice,
    )
    dupont_customer = dupont(tenant, external_id="dupont-2", name="Dupont 2", email="dupont2@x.test")
    client = portal_client(dupont_customer)
    # then
    assert client.get(f"/portal/support/{theirs.pk}/").status_code == 404
    assert client.post(f"/portal/support/{theirs.pk}/", {"body": "Let me in"}).status_code == 404
    assert client.get(f"/portal/support/?invoice={durand_invoice.pk}").status_code == 404
    assert client.get("/portal/support/?invoice=not-a-uuid").status_code == 404
    response = client.post(
        "/portal/support/", {"subject": "Mine", "invoice": str(durand_invoice.pk), "body": "Whose invoice?"}
    )
    assert response.status_code == 422  # not among the form's choices
    assert "Secret" not in client.get("/portal/support/").content.decode()
    assert theirs.messages.count() == 1
    assert SupportCase.objects.count() == 1


def test_the_support_pages_need_a_portal_session(client: Any, tenant: Tenant) -> None:
    assert client.get("/portal/support/").status_code == 302
