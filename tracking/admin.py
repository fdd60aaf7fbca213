from django.contrib import admin

from .models import Click, Event, Referral


@admin.register(Click)
class ClickAdmin(admin.ModelAdmin):
    list_display = ("created_at", "program", "affiliate", "visitor_id", "source", "country")
    list_filter = ("program", "source")
    raw_id_fields = ("affiliate",)
    show_full_result_count = False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "program",
        "name",
        "order_id",
        "amount_cents",
        "currency",
        "affiliate",
        "occurred_at",
    )
    list_filter = ("program", "name", "livemode", "attribution")
    search_fields = ("public_id", "order_id", "customer_id")
    raw_id_fields = ("affiliate", "referral", "click")


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = ("public_id", "program", "affiliate", "customer_id", "method", "created_at")
    list_filter = ("program", "method")
    search_fields = ("public_id", "customer_id")
    raw_id_fields = ("affiliate", "click")
