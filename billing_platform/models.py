from django.db import models


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an ``Idempotency-Key``, replayed for the same key and body."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    # SHA-256 of method, path and body: the same key with another request is a 409, not a replay.
    request_hash = models.CharField(max_length=64)
    # Null while the first request is still being processed.
    response_status = models.PositiveSmallIntegerField(null=True)
    # The JSON text as first sent, so that a replay is byte-for-byte the same (jsonb would reorder keys).
    response_body = models.TextField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_unique_key_per_tenant")]

    def __str__(self) -> str:
        return self.key
