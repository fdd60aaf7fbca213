"""Thin tasks of the affiliates app. The promotion-code tasks live beside the services that queue
them (`affiliates.provisioning`) and are re-exported here for the worker's autodiscovery."""

from __future__ import annotations

from celery import shared_task

from .provisioning import friend_reward_sync_task, promotion_code_sync_task, sweep_all

__all__ = ["friend_reward_sync_task", "promotion_code_sync_task", "sweep_promotion_codes"]


@shared_task(acks_late=True)
def sweep_promotion_codes() -> int:
    """Daily: queue a sync of every affiliate of each program with an active friend reward, so a code
    whose job was lost (a worker killed after its retries) or refused is tried again."""
    from refapp.stripe_api import stripe_enabled

    from .models import FriendReward

    if not stripe_enabled():
        return 0
    programs = FriendReward.objects.filter(is_active=True).values_list("program_id", flat=True).distinct()
    return sum(sweep_all(program_id) for program_id in sorted(set(programs)))
