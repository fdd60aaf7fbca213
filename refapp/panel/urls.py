"""The panel's URL namespace `panel:`."""

from django.urls import path

from .views import (
    affiliates,
    commissions,
    dashboard,
    fraud,
    groups,
    imports,
    logs,
    payouts,
    privacy,
    programs,
    reconciliation,
    reports,
    rewards,
    rules,
    team,
    webhooks,
)

app_name = "panel"

urlpatterns = [
    path("", programs.home, name="home"),
    path("setup/", programs.setup, name="setup"),
    path("login/", programs.login_view, name="login"),
    path("logout/", programs.logout_view, name="logout"),
    path("password/", programs.password_change, name="password-change"),
    path("welcome/<str:uidb64>/<str:token>/", team.welcome, name="welcome"),
    path("programs/", programs.program_list, name="program-list"),
    path("programs/new/", programs.program_create, name="program-create"),
    path("p/<slug:slug>/", dashboard.dashboard, name="dashboard"),
    path("p/<slug:slug>/breakdown/", dashboard.dashboard_breakdown, name="dashboard-breakdown"),
    path("p/<slug:slug>/settings/", programs.program_settings, name="program-settings"),
    path(
        "p/<slug:slug>/settings/customer-referrals/",
        programs.program_customer_referrals,
        name="program-customer-referrals",
    ),
    path("p/<slug:slug>/keys/", programs.program_keys, name="program-keys"),
    path("p/<slug:slug>/keys/<int:key_id>/revoke/", programs.program_key_revoke, name="program-key-revoke"),
    path("p/<slug:slug>/team/", team.team, name="team"),
    path("p/<slug:slug>/team/<int:member_id>/role/", team.team_role, name="team-role"),
    path("p/<slug:slug>/team/<int:member_id>/remove/", team.team_remove, name="team-remove"),
    # affiliates, groups, rules, commissions, fraud
    path("p/<slug:slug>/affiliates/", affiliates.affiliate_list, name="affiliate-list"),
    path("p/<slug:slug>/affiliates/invite/", affiliates.affiliate_invite, name="affiliate-invite"),
    path("p/<slug:slug>/affiliates/export.csv", affiliates.affiliate_export, name="affiliate-export"),
    path("p/<slug:slug>/affiliates/import/", imports.import_start, name="import"),
    path("p/<slug:slug>/affiliates/import/<str:token>/", imports.import_preview, name="import-preview"),
    path(
        "p/<slug:slug>/affiliates/import/<str:token>/confirm/", imports.import_confirm, name="import-confirm"
    ),
    path("p/<slug:slug>/affiliates/<str:public_id>/", affiliates.affiliate_detail, name="affiliate-detail"),
    path(
        "p/<slug:slug>/affiliates/<str:public_id>/privacy/",
        privacy.affiliate_privacy,
        name="affiliate-privacy",
    ),
    path("p/<slug:slug>/privacy/", privacy.customer_privacy, name="privacy"),
    path(
        "p/<slug:slug>/affiliates/<str:public_id>/status/",
        affiliates.affiliate_status,
        name="affiliate-status",
    ),
    path("p/<slug:slug>/groups/", groups.group_list, name="group-list"),
    path("p/<slug:slug>/groups/new/", groups.group_create, name="group-create"),
    path("p/<slug:slug>/groups/<str:public_id>/", groups.group_edit, name="group-edit"),
    path("p/<slug:slug>/friend-reward/", rewards.friend_reward, name="friend-reward"),
    path(
        "p/<slug:slug>/groups/<str:public_id>/friend-reward/",
        rewards.friend_reward,
        name="group-friend-reward",
    ),
    path(
        "p/<slug:slug>/affiliates/<str:public_id>/promotion-code/",
        rewards.promotion_code,
        name="affiliate-promotion-code",
    ),
    path("p/<slug:slug>/rules/", rules.rule_list, name="rule-list"),
    path("p/<slug:slug>/rules/new/", rules.rule_create, name="rule-create"),
    path("p/<slug:slug>/rules/<str:public_id>/", rules.rule_edit, name="rule-edit"),
    path("p/<slug:slug>/rules/<str:public_id>/deactivate/", rules.rule_deactivate, name="rule-deactivate"),
    path("p/<slug:slug>/commissions/", commissions.commission_list, name="commission-list"),
    path("p/<slug:slug>/commissions/bulk/", commissions.commission_bulk, name="commission-bulk"),
    path("p/<slug:slug>/commissions/export.csv", commissions.commission_export, name="commission-export"),
    path(
        "p/<slug:slug>/commissions/<str:public_id>/", commissions.commission_detail, name="commission-detail"
    ),
    path("p/<slug:slug>/fraud/", fraud.fraud_queue, name="fraud-queue"),
    path("p/<slug:slug>/fraud/<int:flag_id>/resolve/", fraud.fraud_resolve, name="fraud-resolve"),
    # events and clicks logs
    path("p/<slug:slug>/events/", logs.event_list, name="event-list"),
    path("p/<slug:slug>/events/export.csv", logs.event_export, name="event-export"),
    path("p/<slug:slug>/clicks/", logs.click_list, name="click-list"),
    path("p/<slug:slug>/activity/", logs.activity_list, name="activity"),
    # reports by campaign, sub id, source
    path("p/<slug:slug>/reports/", reports.report_page, name="reports"),
    path("p/<slug:slug>/reports/export.csv", reports.report_export, name="report-export"),
    # payouts
    path("p/<slug:slug>/payouts/", payouts.payout_list, name="payout-list"),
    path("p/<slug:slug>/payouts/run/", payouts.payout_run, name="payout-run"),
    path("p/<slug:slug>/payouts/export.csv", payouts.payout_export, name="payout-export"),
    path("p/<slug:slug>/payouts/sepa.xml", payouts.payout_export_sepa, name="payout-export-sepa"),
    path("p/<slug:slug>/payouts/wise.csv", payouts.payout_export_wise, name="payout-export-wise"),
    path("p/<slug:slug>/payouts/tax-report.csv", payouts.tax_export, name="tax-export"),
    path(
        "p/<slug:slug>/affiliates/<str:public_id>/tax-form/",
        payouts.tax_form_download,
        name="tax-form-download",
    ),
    path("p/<slug:slug>/payouts/<str:public_id>/", payouts.payout_detail, name="payout-detail"),
    path(
        "p/<slug:slug>/payouts/<str:public_id>/mark-paid/",
        payouts.payout_mark_paid_view,
        name="payout-mark-paid",
    ),
    path("p/<slug:slug>/payouts/<str:public_id>/retry/", payouts.payout_retry_view, name="payout-retry"),
    # reconciliation with Stripe
    path("p/<slug:slug>/reconciliation/", reconciliation.reconciliation_page, name="reconciliation"),
    path(
        "p/<slug:slug>/reconciliation/check/",
        reconciliation.reconciliation_check,
        name="reconciliation-check",
    ),
    path(
        "p/<slug:slug>/reconciliation/<str:public_id>/decide/",
        reconciliation.finding_decide_view,
        name="reconciliation-decide",
    ),
    # webhooks
    path("p/<slug:slug>/webhooks/", webhooks.webhook_list, name="webhook-list"),
    path("p/<slug:slug>/webhooks/new/", webhooks.webhook_create, name="webhook-create"),
    path("p/<slug:slug>/webhooks/<str:public_id>/", webhooks.webhook_detail, name="webhook-detail"),
    path("p/<slug:slug>/webhooks/<str:public_id>/edit/", webhooks.webhook_edit, name="webhook-edit"),
    path("p/<slug:slug>/webhooks/<str:public_id>/delete/", webhooks.webhook_delete, name="webhook-delete"),
    path("p/<slug:slug>/webhooks/<str:public_id>/rotate/", webhooks.webhook_rotate, name="webhook-rotate"),
    path("p/<slug:slug>/webhooks/<str:public_id>/test/", webhooks.webhook_send_test, name="webhook-test"),
    path(
        "p/<slug:slug>/webhooks/<str:public_id>/replay-failed/",
        webhooks.webhook_replay_failed,
        name="webhook-replay-failed",
    ),
    path(
        "p/<slug:slug>/webhooks/<str:public_id>/deliveries/<str:delivery_id>/replay/",
        webhooks.webhook_delivery_replay,
        name="webhook-delivery-replay",
    ),
]
