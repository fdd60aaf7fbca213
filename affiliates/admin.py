from django.contrib import admin

from .models import Affiliate, ApiKey, PartnerGroup, Program


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "website", "currency", "hold_days", "cookie_days")
    search_fields = ("name", "slug")


@admin.register(PartnerGroup)
class PartnerGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "program", "is_active")
    list_filter = ("program",)


@admin.register(Affiliate)
class AffiliateAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "code", "program", "status", "created_at")
    list_filter = ("program", "status")
    search_fields = ("name", "email", "code")
    readonly_fields = ("public_id", "email_hash", "code_key")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "program", "mode", "created_at", "last_used_at", "revoked_at")
    list_filter = ("program", "mode")
    readonly_fields = ("key_hash", "prefix")
