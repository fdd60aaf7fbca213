import time

from django.core.management.base import BaseCommand, CommandError

from tracking import buffer


class Command(BaseCommand):
    help = "Move buffered clicks from Redis into PostgreSQL (what the one-second beat job does)."

    def add_arguments(self, parser):
        parser.add_argument("--follow", action="store_true", help="keep draining every 200 ms until stopped")

    def handle(self, *args, **options):
        if not buffer.enabled():
            raise CommandError("The click buffer is off (set REFAPP_CLICK_BUFFER=1 and REDIS_URL).")
        total = buffer.drain()
        while options["follow"]:
            time.sleep(0.2)
            total += buffer.drain()
        self.stdout.write(f"Stored {total} click(s); {buffer.pending()} still buffered.")
