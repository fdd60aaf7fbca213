from django.contrib import admin

from .models import Commission, CommissionRule, FraudFlag, Refund


@admin.register(CommissionRule)
class CommissionRuleAdmin(admin.ModelAdmin):
    list_display = ("public_id", "program", "event_name", "type", "rate_bp", "amount_cents", "is_active")
    list_filter = ("program", "type", "is_active")


@admin.register(Commission)
class CommissionAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "program",
        "affiliate",
        "kind",
        "amount_cents",
        "currency",
        "status",
        "hold_until",
    )
    list_filter = ("program", "status", "kind", "livemode")
    search_fields = ("public_id",)
    raw_id_fields = ("affiliate", "event", "rule", "reverses")


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ("refund_id", "program", "event", "amount_cents", "created_at")
    raw_id_fields = ("event",)


@admin.register(FraudFlag)
class FraudFlagAdmin(admin.ModelAdmin):
    list_display = ("created_at", "program", "affiliate", "reason", "status")
    list_filter = ("program", "reason", "status")
    raw_id_fields = ("affiliate", "event")
