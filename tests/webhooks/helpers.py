from django.utils import timezone

from refapp.models import Actor
from webhooks.models import EVENT_TYPES
from webhooks.services import endpoint_create


def make_endpoint(program, url, *, events=None, livemode=True):
    return endpoint_create(
        program=program,
        livemode=livemode,
        url=url,
        events=events or list(EVENT_TYPES),
        description="",
        actor=Actor.system(),
        now=timezone.now(),
    )
