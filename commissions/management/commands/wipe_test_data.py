from django.core.management.base import BaseCommand, CommandError

from affiliates.models import Program
from commissions.wipe import program_test_data_wipe
from refapp.models import Actor


class Command(BaseCommand):
    help = "Delete a program's test-mode data (what sk_test_ keys made); live data is never touched."

    def add_arguments(self, parser):
        parser.add_argument("--program", required=True, help="The program's slug")

    def handle(self, *args, **options):
        program = Program.objects.filter(slug=options["program"]).first()
        if program is None:
            raise CommandError(f"No program {options['program']!r}.")
        counts = program_test_data_wipe(program=program, actor=Actor("command:wipe_test_data"))
        self.stdout.write(", ".join(f"{n} {kind}" for kind, n in counts.items()) + " deleted.")
