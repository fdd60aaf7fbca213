from django.core.management.base import BaseCommand

from commissions import rollups


class Command(BaseCommand):
    help = (
        "Fold the logged changes into the conversion rollups (what the 15-second job does), or with "
        "--rebuild recompute them from every event and commission (after a bulk import with the "
        "triggers disabled)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="recompute from scratch")

    def handle(self, *args, **options):
        if options["rebuild"]:
            rollups.rebuild()
            self.stdout.write("Rebuilt the conversion rollups.")
        else:
            self.stdout.write(f"Folded {rollups.fold()} change(s).")
