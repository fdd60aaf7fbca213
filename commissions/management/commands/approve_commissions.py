from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from commissions.services import approve_due_commissions


class Command(BaseCommand):
    help = "Approve pending commissions whose hold period has ended (what the hourly job does)."

    def add_arguments(self, parser):
        parser.add_argument("--now", help="ISO 8601 time to act as now (default: the current time)")

    def handle(self, *args, **options):
        now = timezone.now()
        if options["now"]:
            now = parse_datetime(options["now"])
            if now is None or now.tzinfo is None:
                raise CommandError("--now must be an ISO 8601 time with a zone, e.g. 2026-12-01T06:00:00Z")
        count = approve_due_commissions(now=now)
        self.stdout.write(f"Approved {count} commission(s).")
