from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        # The domain never imports this app: it listens to the audit rows the domain writes.
        from refapp.models import AuditLog, audit_recorded, collect_rows, watch_programs

        from .outbox import messages_for, messages_written, on_audit_recorded
        from .watch import program_watched

        watch_programs(program_watched)
        collect_rows(messages_for, messages_written)
        audit_recorded.connect(on_audit_recorded, sender=AuditLog, dispatch_uid="webhooks.outbox")
