import factory

from affiliates.models import Affiliate, PartnerGroup, Program
from commissions.models import CommissionRule


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"program-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    website = factory.LazyAttribute(lambda o: f"https://{o.slug}.example")
    currency = "USD"
    cookie_days = 30
    hold_days = 30
    allowed_origins = factory.LazyFunction(list)
    ref_params = factory.LazyFunction(list)


class PartnerGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PartnerGroup

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"Group {n}")


class AffiliateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Affiliate

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"Partner {n}")
    email = factory.Sequence(lambda n: f"partner{n}@example.com")
    code = factory.Sequence(lambda n: f"CODE{n}")
    status = Affiliate.Status.ACTIVE


class CommissionRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommissionRule

    program = factory.SubFactory(ProgramFactory)
    event_name = "sale"
    type = CommissionRule.Type.PERCENT
    rate_bp = 2000
