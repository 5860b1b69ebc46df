"""ERP export targets and their exports as the API writes them."""

from rest_framework import serializers
from rest_framework.reverse import reverse

from billing_platform.api.serializers import StrictSerializer
from revrec.api.run_serializers import PeriodField
from revrec.models import ExportFormat, JournalExport


class ExportTargetInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, help_text="Unique per tenant, e.g. the ERP's name.")
    format = serializers.ChoiceField(choices=ExportFormat.choices, help_text="The file format of its exports.")


class ExportTargetOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    format = serializers.ChoiceField(choices=ExportFormat.choices, read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class JournalExportInputSerializer(StrictSerializer):
    period = PeriodField(help_text="The month whose journal entries to export, YYYY-MM.")


class JournalExportOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    target = serializers.UUIDField(source="target_id", read_only=True)
    period = PeriodField(read_only=True)
    format = serializers.ChoiceField(choices=ExportFormat.choices, source="target.format", read_only=True)
    entries = serializers.IntegerField(read_only=True, help_text="Journal entries this export took.")
    lines = serializers.IntegerField(read_only=True, help_text="Their journal lines: the rows of the file.")
    requested_by = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    download = serializers.SerializerMethodField(help_text="Where to download the file.")

    def get_download(self, export: JournalExport) -> str:
        return reverse("journal-export-download", kwargs={"pk": export.target_id, "export_id": export.pk})
