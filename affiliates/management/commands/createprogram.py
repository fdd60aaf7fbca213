from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from affiliates.services import Conflict, apikey_create, program_create
from refapp.money import is_currency
from refapp.tracker import tracker_snippet


class Command(BaseCommand):
    help = "Create a program and print its live and test secret keys (shown once, stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--website", required=True)
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--hold-days", type=int, default=30)
        parser.add_argument("--cookie-days", type=int, default=30)

    def handle(self, *args, **options):
        if not is_currency(options["currency"]):
            raise CommandError(f"Unknown currency {options['currency']!r}; use an ISO 4217 code such as USD.")
        try:
            program = program_create(
                slug=options["slug"],
                name=options["name"],
                website=options["website"],
                currency=options["currency"].upper(),
                hold_days=options["hold_days"],
                cookie_days=options["cookie_days"],
            )
        except Conflict as exc:
            raise CommandError(exc.message) from exc
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        _, live = apikey_create(program=program, mode="live", name="created by createprogram")
        _, test = apikey_create(program=program, mode="test", name="created by createprogram")
        self.stdout.write(f"Created program {program.name!r} ({program.slug}).")
        self.stdout.write("Secret keys (shown once; store them now):")
        self.stdout.write(f"  live: {live}")
        self.stdout.write(f"  test: {test}")
        self.stdout.write("Tracker tag for every page of your site:")
        snippet = tracker_snippet(
            slug=program.slug, params=program.ref_params, cookie_days=program.cookie_days
        )
        self.stdout.write(f"  {snippet}")
