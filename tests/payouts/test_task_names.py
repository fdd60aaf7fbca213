"""Beat schedules and queued messages name tasks by string: those names must keep resolving."""

from refapp.celery import app


def test_every_scheduled_and_queued_payout_task_is_registered_under_its_name():
    import payouts.tasks  # what the worker's autodiscovery imports
    from payouts.services import payout_send_task

    app.loader.import_default_modules()
    assert payout_send_task.name == "payouts.tasks.payout_send"
    assert app.tasks["payouts.tasks.payout_send"].run.__module__ == "payouts.services"
    assert payouts.tasks.payout_send is payout_send_task
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks, entry["task"]
