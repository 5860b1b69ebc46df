"""Bulk actions of the invoices list: finalize and send the selected drafts, or e-mail the selected
finalized documents again, the rows ticked on the page or every one matching the filter.

Three steps, each a plain form, so they work without JavaScript and with the keyboard: the list
posts the selection here; this page names what will happen ("Finalize and send 12 invoices
totalling €1,234.00?") and carries the ids it resolved; confirming calls ``invoices_drafts_finalize``
or ``invoices_send`` and redirects to the outcome (finalized, left as drafts with what they lack and
a link to each, skipped). Submitting the confirmation twice finalizes nothing twice: the service
takes only drafts, under lock."""

import uuid
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from backoffice.access import WRITERS, current_actor, current_tenant, staff_view
from backoffice.formatting import day, money, query_string
from backoffice.invoicing.forms import FILTER_NAMES
from backoffice.invoicing.views import invoices_filtered, missing_labels
from backoffice.pages import clean_text
from invoicing.models import Invoice, InvoiceKind, InvoiceStatus
from invoicing.selectors import invoices_totals
from invoicing.services import SENDABLE, invoices_drafts_finalize, invoices_send

ACTIONS = ("finalize", "send")
# A selection larger than this is refused. Measured on the development machine: 200 drafts finalize
# in 1.2 s, 800 in 6.3 s (8 ms each: numbers, audit, events, payments' settlement), so 1,000 stay
# well inside a request's time, by chunks of 200 (``BULK_CHUNK``) that each hold the number
# sequence for about a second. More at once is a bill run's own "Finalize and send" (docs/invoicing.md).
MAX_SELECTION = 1000
# The outcome page lists this many documents of each kind, then says how many more.
SHOWN = 100
RESULT_KEY = "invoice_bulk_result"


def _ids(values: list[str]) -> list[uuid.UUID]:
    """The invoice ids of a submission; what is not one is left out (it could match nothing anyway)."""
    ids = []
    for value in values:
        for part in value.split():
            try:
                ids.append(uuid.UUID(part))
            except ValueError:
                continue
    return list(dict.fromkeys(ids))


def _applicable(qs: QuerySet[Invoice], action: str) -> QuerySet[Invoice]:
    """The invoices ``action`` takes: the drafts to finalize, or the numbered documents to e-mail."""
    if action == "finalize":
        return qs.filter(kind=InvoiceKind.INVOICE, status=InvoiceStatus.DRAFT)
    return qs.filter(status__in=SENDABLE).exclude(number="")


def _back_to_list(query: str) -> HttpResponse:
    return redirect(reverse("backoffice:invoices") + ("?" + query if query else ""))


def totals_text(totals: list[Any]) -> str:
    """The totals of a selection, one per currency: "€1,200.00 and $300.00"."""
    amounts = [money(t.total) for t in totals]
    if len(amounts) < 2:
        return "".join(amounts)
    return _("%(amounts)s and %(last)s") % {"amounts": ", ".join(amounts[:-1]), "last": amounts[-1]}


@staff_view(WRITERS)
@require_POST
def invoices_bulk(request: HttpRequest) -> HttpResponse:
    """The selection from the list (``invoice`` ticked rows, or ``scope=filter`` with the list's
    filter), or the confirmed selection (``ids`` and ``confirm``)."""
    tenant = current_tenant(request)
    action = request.POST.get("action", "")
    params = {k: clean_text(request.POST.get(k, "")) for k in FILTER_NAMES}
    query = query_string(**params)
    if action not in ACTIONS:
        messages.error(request, _("Choose an action for the selected invoices."))
        return _back_to_list(query)
    if request.POST.get("scope") == "filter":
        _form, matching, _run = invoices_filtered(tenant, request.POST)
        ids = list(_applicable(matching, action).order_by().values_list("pk", flat=True)[: MAX_SELECTION + 1])
    else:
        ids = _ids(request.POST.getlist("invoice") + request.POST.getlist("ids"))
    if len(ids) > MAX_SELECTION:
        messages.error(
            request,
            _("Select at most %(max)s invoices at once: narrow the filter, by issue date for instance.")
            % {"max": MAX_SELECTION},
        )
        return _back_to_list(query)
    if request.POST.get("confirm") == "yes":
        return _apply(request, action, ids, query)
    candidates = _applicable(Invoice.objects.filter(tenant=tenant, pk__in=ids), action)
    count = candidates.count()
    if not count:
        messages.error(
            request,
            _("None of the selected invoices is a draft: there is nothing to finalize.")
            if action == "finalize"
            else _("None of the selected documents is finalized: there is nothing to e-mail."),
        )
        return _back_to_list(query)
    totals = invoices_totals(candidates)
    if action == "finalize":
        question = ngettext(
            "Finalize and send %(count)d invoice totalling %(total)s?",
            "Finalize and send %(count)d invoices totalling %(total)s?",
            count,
        )
    else:
        question = ngettext(
            "E-mail %(count)d document totalling %(total)s to its customer again?",
            "E-mail %(count)d documents totalling %(total)s to their customers again?",
            count,
        )
    shown = list(candidates.select_related("customer").defer("pdf").order_by("issue_date", "created_at", "pk")[:SHOWN])
    context = {
        "action": action,
        "question": question % {"count": count, "total": totals_text(totals)},
        "count": count,
        "totals": totals,
        "shown": shown,
        "more": count - len(shown),
        "skipped": len(ids) - count,
        "ids": " ".join(str(pk) for pk in candidates.order_by("pk").values_list("pk", flat=True)),
        "params": [(k, v) for k, v in params.items() if v],
        "query": query,
    }
    return render(request, "backoffice/invoicing/bulk_confirm.html", context)


def _apply(request: HttpRequest, action: str, ids: list[uuid.UUID], query: str) -> HttpResponse:
    tenant, actor, at = current_tenant(request), current_actor(request), timezone.now()
    if action == "finalize":
        result = invoices_drafts_finalize(tenant=tenant, invoice_ids=ids, actor=actor, at=at)
        outcome = {
            "action": action,
            "done": len(result.finalized),
            "numbers": [(str(i.pk), i.number) for i in result.finalized[:SHOWN]],
            "failed": [
                {
                    "id": str(invoice.pk),
                    "customer": invoice.customer.name,
                    "date": day(invoice.issue_date),
                    "missing": ", ".join(missing_labels(missing)),
                }
                for invoice, missing in result.incomplete
            ],
            "skipped": result.skipped,
            "interrupted": len(result.interrupted),
            "query": query,
        }
    else:
        sent = invoices_send(tenant=tenant, invoice_ids=ids, actor=actor, at=at)
        outcome = {
            "action": action,
            "done": len(sent.queued),
            "numbers": [(str(i.pk), i.number) for i in sent.queued[:SHOWN]],
            "failed": [],
            "skipped": sent.skipped,
            "query": query,
        }
    request.session[RESULT_KEY] = outcome
    return redirect("backoffice:invoices-bulk-result")


@staff_view(WRITERS)
def invoices_bulk_result(request: HttpRequest) -> HttpResponse:
    """What the last bulk action of this session did (after its redirect, so reloading repeats nothing)."""
    outcome = request.session.get(RESULT_KEY)
    if not isinstance(outcome, dict):
        return redirect("backoffice:invoices")
    done, failed = outcome["done"], len(outcome["failed"])
    if outcome["action"] == "finalize":
        if failed:
            headline = ngettext(
                "%(done)d finalized and sent, %(failed)d not finalized",
                "%(done)d finalized and sent, %(failed)d not finalized",
                failed,
            ) % {"done": done, "failed": failed}
        else:
            headline = ngettext("%(done)d invoice finalized and sent", "%(done)d invoices finalized and sent", done) % {
                "done": done
            }
    else:
        headline = ngettext(
            "%(done)d document queued to be e-mailed again", "%(done)d documents queued to be e-mailed again", done
        ) % {"done": done}
    context = {
        **outcome,
        "headline": headline,
        "more": done - len(outcome["numbers"]),
    }
    return render(request, "backoffice/invoicing/bulk_result.html", context)
