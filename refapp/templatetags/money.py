from django import template

from refapp.money import MoneyError, format_amount

register = template.Library()


@register.filter
def money(cents, currency: str) -> str:
    """{{ 1234|money:"USD" }} → 12.34 USD"""
    try:
        return format_amount(int(cents or 0), currency)
    except (MoneyError, TypeError, ValueError):
        return ""
