"""The partner portal's URL namespace `portal:` and the public join flow `join:`."""

from affiliates.urls_portal import join_urlpatterns
from affiliates.urls_portal import urlpatterns as affiliate_patterns
from commissions.urls_portal import urlpatterns as commission_patterns
from payouts.urls_portal import urlpatterns as payout_patterns

app_name = "portal"

urlpatterns = [*affiliate_patterns, *commission_patterns, *payout_patterns]
join_patterns = (join_urlpatterns, "join")
