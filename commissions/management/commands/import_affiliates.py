"""manage.py import_affiliates: the same import as the panel's import page (commissions/imports.py)."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from affiliates.models import Program
from commissions.imports import FORMATS, ImportConflict, ImportFileError, ImportReport, import_affiliates
from refapp.models import Actor


class Command(BaseCommand):
    help = (
        "Import affiliates, their referred customers and (refapp format) their commission history "
        "from a CSV file. The file lands whole or not at all; see docs/import.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--program", required=True, help="The program's slug")
        parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
        parser.add_argument("file", help="The CSV file (UTF-8)")
        parser.add_argument("--dry-run", action="store_true", help="Say what would change; write nothing")
        parser.add_argument(
            "--skip-invalid", action="store_true", help="Import the valid rows and list the refused ones"
        )
        parser.add_argument(
            "--ref-param",
            action="append",
            default=[],
            metavar="NAME",
            help="Also read ?NAME= as a referral code (e.g. via for Rewardful links, fpr for FirstPromoter)",
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON")

    def handle(self, *args, **options):
        program = Program.objects.filter(slug=options["program"]).first()
        if program is None:
            raise CommandError(f"No program {options['program']!r}.")
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
        try:
            report = import_affiliates(
                program=program,
                fmt=options["fmt"],
                data=data,
                actor=Actor("command:import_affiliates"),
                dry_run=options["dry_run"],
                skip_invalid=options["skip_invalid"],
                ref_params=options["ref_param"],
                filename=path.name,
            )
        except (ImportFileError, ImportConflict) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2))
        else:
            self._print(report)
        if not report.dry_run and not report.landed:
            raise CommandError(
                f"{len(report.refused)} row(s) refused: nothing was imported. Fix them, or pass "
                "--skip-invalid to import the other rows."
            )

    def _print(self, report: ImportReport) -> None:
        c = report.counts
        head = "Dry run, nothing written" if report.dry_run else "Imported" if report.landed else "Refused"
        self.stdout.write(
            f"{head}: {report.rows} rows: {c['new']} new, {c['updated']} updated, "
            f"{c['unchanged']} unchanged, {c['refused']} refused."
        )
        a, cu, co = report.affiliates, report.customers, report.commissions
        self.stdout.write(
            f"  affiliates: {a['new']} new, {a['updated']} updated, {a['unchanged']} unchanged; "
            f"customers: {cu['new']} new, {cu['unchanged']} unchanged; "
            f"commissions: {co['new']} new ({co['pending']} pending, {co['approved']} approved, "
            f"{co['paid']} paid), {co['unchanged']} unchanged"
        )
        if report.ref_params_added:
            verb = "would read" if report.dry_run else "now reads"
            self.stdout.write(
                f"  the program {verb} ?{', ?'.join(report.ref_params_added)}= as referral codes"
            )
        for note in report.notes:
            self.stdout.write(f"  note: {note}")
        for refusal in report.refused:
            self.stderr.write(f"  line {refusal.line}: {refusal.reason}")
