import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError

from tracking.models import Click

pytestmark = pytest.mark.django_db


def test_drain_command_refuses_when_buffer_is_off(settings):
    settings.REFAPP_CLICK_BUFFER = False
    with pytest.raises(CommandError, match="buffer is off"):
        call_command("drain_clicks")


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs Redis (REDIS_URL)")
def test_drain_command_stores_buffered_clicks(buffered, capsys, post_clicks):
    post_clicks(4)
    call_command("drain_clicks")
    assert Click.objects.count() == 4 and "Stored 4 click(s); 0 still buffered." in capsys.readouterr().out
