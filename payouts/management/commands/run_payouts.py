import re

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from affiliates.models import Program
from payouts.services import payout_plan, payout_send, payouts_create, processing_payouts
from refapp.models import Actor
from refapp.money import format_amount


class Command(BaseCommand):
    help = "Build and send a program's payouts for a period (what the monthly job does), or preview them."

    def add_arguments(self, parser):
        parser.add_argument("--program", required=True, help="program slug")
        parser.add_argument("--period", help="YYYY-MM (default: the current month)")
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would be paid and change nothing"
        )

    def handle(self, *args, **options):
        program = Program.objects.filter(slug=options["program"]).first()
        if program is None:
            raise CommandError(f"No program {options['program']!r}.")
        period = options["period"]
        if period and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
            raise CommandError("--period must look like 2026-11.")
        now = timezone.now()
        plan = payout_plan(program=program, now=now, period=period)
        if options["dry_run"]:
            self.stdout.write(f"Dry run for {program.slug}, period {plan.period}:")
            for line in plan.lines:
                amount = format_amount(line.net_cents, program.currency)
                if line.eligible:
                    self.stdout.write(
                        f"  PAY   {line.affiliate.code:<20} {amount:>16}  via {line.method} to {line.destination}"
                    )
                else:
                    self.stdout.write(f"  SKIP  {line.affiliate.code:<20} {amount:>16}  {line.reason}")
            self.stdout.write(
                f"Would pay {len(plan.payable)} affiliate(s) {format_amount(plan.total_cents, program.currency)} in total."
            )
            return
        created = payouts_create(program=program, now=now, actor=Actor("command:run_payouts"), period=period)
        # Send inline so the operator sees the outcome; this also heals payouts a crash left in processing.
        results = [
            payout_send(payout_id=p.pk, now=timezone.now())
            for p in processing_payouts(program).order_by("pk")
        ]
        for payout in results:
            self.stdout.write(
                f"  {payout.public_id} {payout.affiliate.code}: {format_amount(payout.amount_cents, payout.currency)} {payout.status} {payout.transfer_id or payout.failure_reason}"
            )
        manual = [p for p in created if p.method != "stripe"]
        self.stdout.write(f"Created {len(created)} payout(s); {len(manual)} wait to be paid by hand.")
