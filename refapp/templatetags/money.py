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


@register.filter
def money_whole(cents, currency: str) -> str:
    """{{ 237200|money_whole:"USD" }} → 2,372.00 USD joined by a no-break space: a stat tile or a
    narrow cell never breaks an amount from its currency."""
    return money(cents, currency).replace(" ", "\u00a0")
