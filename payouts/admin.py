from django.contrib import admin

from .models import Payout, PayoutItem, StripeEvent


class PayoutItemInline(admin.TabularInline):
    model = PayoutItem
    raw_id_fields = ("commission",)
    extra = 0


@admin.register(Payout)
class PayoutAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "program",
        "affiliate",
        "period",
        "method",
        "amount_cents",
        "currency",
        "status",
    )
    list_filter = ("program", "status", "method", "period")
    raw_id_fields = ("affiliate",)
    inlines = [PayoutItemInline]


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "type", "received_at", "result")
    search_fields = ("event_id",)
