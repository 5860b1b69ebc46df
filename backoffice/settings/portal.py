"""Settings → Portal: the tenant's brand on its customer portal, an accent colour and a logo
(``tenancy.branding.tenant_branding_update``, audited). Finance roles see it; writers change it."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.access import FINANCE, can_write, current_actor, current_tenant, staff_view
from billing_platform.errors import InvalidInput
from tenancy.branding import LOGO_MAX_BYTES, tenant_branding_update

SERVICE_ERRORS = {
    "invalid_format": gettext_lazy("A colour is # and 6 hexadecimal digits, e.g. #0b7285."),
    "too_large": gettext_lazy("A logo is at most 200 KB."),
    "invalid_type": gettext_lazy("A logo is a PNG, JPEG or SVG image."),
}


class BrandingForm(forms.Form):
    brand_colour = forms.CharField(
        label=gettext_lazy("Brand colour"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"placeholder": "#0b7285", "pattern": "#[0-9a-fA-F]{6}"}),
        help_text=gettext_lazy("The portal's buttons and menu: # and 6 hexadecimal digits. Blank: the default."),
    )
    logo = forms.FileField(
        label=gettext_lazy("Logo"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/svg+xml"}),
        help_text=gettext_lazy("PNG, JPEG or SVG, at most 200 KB. Shown at the top of every portal page."),
    )
    remove_logo = forms.BooleanField(label=gettext_lazy("Remove the logo"), required=False)


@staff_view(FINANCE)
def portal_settings(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    writer = can_write(request)
    status = 200
    if request.method == "POST" and writer:
        form = BrandingForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["logo"]
            # Read one byte more than allowed: enough to refuse, without reading a huge file.
            logo = upload.read(LOGO_MAX_BYTES + 1) if upload else None
            try:
                tenant_branding_update(
                    tenant=tenant,
                    actor=current_actor(request),
                    at=timezone.now(),
                    brand_colour=form.cleaned_data["brand_colour"],
                    logo=logo,
                    remove_logo=form.cleaned_data["remove_logo"],
                )
            except InvalidInput as exc:
                for error in exc.errors:
                    form.add_error(error.field, SERVICE_ERRORS.get(error.code, error.message))
            else:
                messages.success(request, _("Portal branding saved."))
                return redirect("backoffice:settings-portal")
        status = 400
    elif request.method == "POST":
        raise PermissionDenied("Owners and finance admins change the portal's branding.")
    else:
        form = BrandingForm(initial={"brand_colour": tenant.brand_colour})
    if not writer:
        for field in form.fields.values():
            field.disabled = True
    context = {
        "form": form,
        "can_write": writer,
        "tenant": tenant,
        "login_url": request.build_absolute_uri(reverse("portal:login", args=[tenant.slug])),
    }
    return render(request, "backoffice/settings/portal.html", context, status=status)
