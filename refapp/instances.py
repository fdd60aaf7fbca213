"""Unsaved model instances for the conversion path, built without Model.__init__'s per-field work.

`Model(**kwargs)` walks every field, calls each default and goes through the related-object
descriptors one keyword at a time; a conversion builds six instances (event, affiliate, referral,
rule, commission, audit row) and that was a sixth of a web worker's busy time under load.
`unsaved(Model, **kwargs)` fills the same attributes straight into the instance: field defaults
(callables called per instance), the given values by attribute name, and a related object given by
field name both as its id and in the related-object cache, as the descriptor would. Equivalence
with `Model(**kwargs)` is tested model by model (tests/refapp/test_instances.py).

Only for plain models: no custom __init__ and no pre_init/post_init receivers, which it skips.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, models
from django.db.models.base import ModelState

M = TypeVar("M", bound=models.Model)
_IMMUTABLE = (str, int, float, bool, bytes, Decimal, type(None))


class _Plan:
    __slots__ = ("defaults", "factories", "relations", "attnames")

    def __init__(self, model: type[models.Model]):
        self.defaults: dict[str, Any] = {}
        self.factories: list[tuple[str, Callable[[], Any]]] = []
        # field name -> (its attname, the attribute of the related object it stores, that model)
        self.relations: dict[str, tuple[str, str, type[models.Model]]] = {}
        for field in model._meta.concrete_fields:
            default = field.get_default()
            if field.has_default() and callable(field.default) or not isinstance(default, _IMMUTABLE):
                self.factories.append((field.attname, field.get_default))
            else:
                self.defaults[field.attname] = default
            if field.is_relation:
                self.relations[field.name] = (
                    field.attname,
                    field.target_field.attname,
                    field.remote_field.model._meta.concrete_model,
                )
        self.attnames = frozenset(f.attname for f in model._meta.concrete_fields)


_plans: dict[type[models.Model], _Plan] = {}


def unsaved(model: type[M], /, **values: Any) -> M:
    """The same instance as model(**values); values are concrete fields, by name or attname."""
    plan = _plans.get(model)
    if plan is None:
        plan = _plans[model] = _Plan(model)
    obj = model.__new__(model)
    state = obj._state = ModelState()
    attrs = obj.__dict__
    attrs.update(plan.defaults)
    for attname, factory in plan.factories:
        attrs[attname] = factory()
    for name, value in values.items():
        relation = plan.relations.get(name)
        if relation is not None:
            attname, target, related_model = relation
            if value is None:
                attrs[attname] = None
            elif not isinstance(value, related_model):
                raise ValueError(f"{model.__name__}.{name} must be a {related_model.__name__} instance")
            else:
                attrs[attname] = getattr(value, target)
                # As the descriptor does (without database routers): both ends use the default one.
                state.db = state.db or value._state.db or DEFAULT_DB_ALIAS
                if value._state.db is None:
                    value._state.db = state.db
            state.fields_cache[name] = value
        elif name in plan.attnames:
            attrs[name] = value
        else:
            raise TypeError(f"{model.__name__} has no field {name!r}")
    return obj
