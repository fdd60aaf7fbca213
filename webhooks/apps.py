from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        # The domain never imports this app: it listens to the audit rows the domain writes.
        from refapp.models import AuditLog, audit_recorded, watch_programs

        from .outbox import on_audit_recorded
        from .watch import program_watched

        watch_programs(program_watched)
        audit_recorded.connect(on_audit_recorded, sender=AuditLog, dispatch_uid="webhooks.outbox")
