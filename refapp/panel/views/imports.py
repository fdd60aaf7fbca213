"""Panel: import affiliates from a CSV file: upload, preview (nothing written), confirm.

The uploaded file is stored server-side under a random token (commissions.imports.upload_store)
between the preview and the confirmation, so the confirmation imports exactly the file that was
previewed, from whichever web process answers it. The same service as `manage.py
import_affiliates` does the work. Admins only: an import writes affiliates and commission history.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from commissions import imports
from commissions.models import ImportUpload
from refapp.htmx import render_page

from ..access import actor, get_program_for_staff, staff_required
from ..forms import ImportForm


def _get_upload_for_program(program, token: str) -> ImportUpload:
    upload = imports.upload_for(program=program, token=token, now=timezone.now())
    if upload is None:
        raise Http404("No such upload (it may have expired: upload the file again)")
    return upload


@require_http_methods(["GET", "POST"])
@staff_required
def import_start(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, admin=True)
    form = ImportForm(request.POST or None, request.FILES or None, max_bytes=settings.REFAPP_IMPORT_MAX_BYTES)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        token = imports.upload_store(
            program=program,
            fmt=form.cleaned_data["format"],
            data=form.data_bytes,
            filename=upload.name or "",
            ref_param=form.cleaned_data["ref_param"],
            skip_invalid=form.cleaned_data["skip_invalid"],
            user=request.user,
            now=timezone.now(),
        )
        return redirect("panel:import-preview", program.slug, token)
    status = 400 if request.method == "POST" else 200
    return render_page(request, "panel/import.html", {"program": program, "form": form}, status=status)


@require_GET
@staff_required
def import_preview(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, admin=True)
    upload = _get_upload_for_program(program, token)
    try:
        report = imports.upload_preview(upload=upload)
    except imports.ImportFileError as exc:  # checked on upload; only a changed format could land here
        messages.error(request, str(exc))
        return redirect("panel:import", program.slug)
    context = {
        "program": program,
        "upload": upload,
        "report": report,
        "token": token,
        "format_label": imports.FORMAT_LABELS.get(upload.format, upload.format),
    }
    return render_page(request, "panel/import_preview.html", context)


@require_POST
@staff_required
def import_confirm(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, admin=True)
    upload = _get_upload_for_program(program, token)
    try:
        report = imports.upload_confirm(upload=upload, actor=actor(request))
    except (imports.ImportFileError, imports.ImportConflict) as exc:
        messages.error(request, f"Nothing was imported: {exc}")
        return redirect("panel:import-preview", program.slug, token)
    if not report.landed:
        messages.error(
            request,
            f"Nothing was imported: {report.counts['refused']} row(s) are refused (listed below). "
            "Fix the file and upload it again, or upload it with “import the valid rows”.",
        )
        return redirect("panel:import-preview", program.slug, token)
    c = report.counts
    messages.success(
        request,
        f"Imported {upload.filename or 'the file'}: {c['new']} new, {c['updated']} updated, "
        f"{c['unchanged']} unchanged, {c['refused']} refused rows "
        f"({report.affiliates['new']} new affiliates, {report.customers['new']} customers, "
        f"{report.commissions['new']} commissions).",
    )
    return redirect("panel:affiliate-list", program.slug)
