import stripe
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payouts.reconcile import period_of, period_window, reconcile_period
from payouts.reconcile_models import ReconciliationFinding
from refapp.models import Actor


class Command(BaseCommand):
    help = "Compare a month's Stripe payouts with the Stripe Connect transfers of that month (what the nightly job does)."

    def add_arguments(self, parser):
        parser.add_argument("--period", help="YYYY-MM (default: the current month)")

    def handle(self, *args, **options):
        now = timezone.now()
        period = options["period"] or period_of(now)
        try:
            period_window(period)
        except ValueError as exc:
            raise CommandError(f"--period: {exc}") from exc
        try:
            run = reconcile_period(period=period, actor=Actor("command:reconcile_stripe"), now=now)
        except (stripe.StripeError, ImproperlyConfigured) as exc:
            raise CommandError(f"The check of {period} failed: {exc}") from exc
        self.stdout.write(
            f"{period}: {run.transfers_seen} transfer(s), {run.payouts_seen} paid payout(s), "
            f"{run.findings_new} new finding(s)."
        )
        waiting = ReconciliationFinding.objects.filter(
            period=period,
            status__in=[ReconciliationFinding.Status.OPEN, ReconciliationFinding.Status.ACKNOWLEDGED],
        ).order_by("pk")
        for finding in waiting:
            self.stdout.write(f"  {finding.public_id}  {finding.get_kind_display()}: {finding.detail}")
