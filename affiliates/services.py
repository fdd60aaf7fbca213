"""Writes for programs, affiliates and API keys. Each is one transaction and audited."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from refapp.models import Actor, audit_log

from .errors import Conflict
from .models import Affiliate, ApiKey, PartnerGroup, Program, ProgramStaff
from .promotions import promotion_code_set
from .provisioning import queue_promotion_code_sync
from .rewards import promotion_code_taken


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def program_create(
    *,
    name: str,
    slug: str,
    website: str,
    currency: str = "USD",
    actor: Actor | None = None,
    user: User | None = None,
    **options: Any,
) -> Program:
    """Create a program (the panel form and `manage.py createprogram` both come here).

    `options` are further Program settings (hold_days, cookie_days, allowed_origins, …). When a
    staff user creates it, they become its admin. Raises Conflict for a taken slug and
    ValidationError for invalid settings; nothing is written then.
    """
    try:
        with transaction.atomic():
            if Program.objects.filter(slug=slug).exists():
                raise Conflict("slug", f"A program with slug {slug!r} already exists.")
            program = Program(slug=slug, name=name, website=website, currency=currency.upper(), **options)
            program.full_clean()
            program.save()
            if user is not None:
                ProgramStaff.objects.create(program=program, user=user, role=ProgramStaff.Role.ADMIN)
            audit_log(actor=actor, action="program.created", obj=program, data={"slug": slug})
    except IntegrityError as exc:  # the unique slug, taken by a concurrent request after the check
        raise Conflict("slug", f"A program with slug {slug!r} already exists.") from exc
    return program


# Fixed once the program exists: its links carry the slug and its amounts are stored in the currency.
PROGRAM_FIXED_FIELDS = frozenset({"slug", "currency"})


def program_update(*, program: Program, actor: Actor | None, **fields: Any) -> Program:
    """Change a program's settings; audited with the names of the fields that really changed."""
    if fixed := PROGRAM_FIXED_FIELDS & fields.keys():
        raise ValueError(f"{', '.join(sorted(fixed))} cannot change once the program exists")
    with transaction.atomic():
        locked = Program.objects.select_for_update().get(pk=program.pk)
        changed = sorted(name for name, value in fields.items() if getattr(locked, name) != value)
        if not changed:
            return locked
        for name in changed:
            setattr(locked, name, fields[name])
        locked.full_clean()
        locked.save(update_fields=changed)
        audit_log(actor=actor, action="program.updated", obj=locked, data={"fields": changed})
    return locked


class SetupDone(Exception):
    """The first admin exists already: setup is closed."""


def first_admin_create(*, username: str, email: str, password: str) -> User:
    """Create the first staff user, a superuser. Only while there is no staff user at all."""
    with transaction.atomic():
        # Locks the staff rows (none, or the ones a racing setup just committed): two browsers
        # racing through setup create one admin.
        if User.objects.select_for_update().filter(is_staff=True).exists():
            raise SetupDone
        user = User(username=username, email=email, is_staff=True, is_superuser=True)
        user.set_password(password)
        user.save()
        audit_log(actor=Actor.for_user(user), action="user.created", obj=user, data={"first_admin": True})
    return user


def staff_password_change(*, user: User, password: str) -> User:
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit_log(actor=Actor.for_user(user), action="user.password_changed", obj=user)
    return user


def apikey_create(
    *, program: Program, mode: str = ApiKey.Mode.LIVE, name: str = "", actor: Actor | None = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never stored and never shown again."""
    secret = f"sk_{mode}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            program=program, mode=mode, name=name, key_hash=hash_secret(secret), prefix=secret[:12]
        )
        audit_log(
            actor=actor, action="apikey.created", obj=program, data={"prefix": key.prefix, "mode": mode}
        )
    return key, secret


def apikey_revoke(*, key: ApiKey, actor: Actor | None = None) -> ApiKey:
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated:
            audit_log(actor=actor, action="apikey.revoked", obj=key.program, data={"prefix": key.prefix})
    key.refresh_from_db()
    return key


def _unique_code(program: Program, base: str) -> str:
    base = "".join(ch for ch in base if ch.isalnum())[:20] or "partner"
    candidate = base.lower()
    while Affiliate.objects.filter(
        program=program, code_key=candidate.lower()
    ).exists() or promotion_code_taken(program=program, code=candidate):
        candidate = f"{base.lower()}{secrets.randbelow(9000) + 1000}"
    return candidate


def affiliate_create(
    *,
    program: Program,
    email: str,
    name: str,
    code: str | None = None,
    status: str = Affiliate.Status.PENDING,
    group: PartnerGroup | None = None,
    actor: Actor | None = None,
    livemode: bool = True,
    **extra,
) -> Affiliate:
    """Codes and emails are unique per program across live and test mode: a /go/ link or a ?ref=
    code never names two affiliates. A test key's clash with a live affiliate answers the same
    409 that a live key would get, and nothing more."""
    email = email.strip().lower()
    with transaction.atomic():
        if Affiliate.objects.filter(program=program, email=email).exists():
            raise Conflict("email", "An affiliate with this email already exists in this program.")
        if code and (
            Affiliate.objects.filter(program=program, code_key=code.lower()).exists()
            or promotion_code_taken(program=program, code=code.replace("_", "-"))
        ):
            raise Conflict("code", f"The code {code!r} is already taken in this program.")
        affiliate = Affiliate(
            program=program,
            email=email,
            name=name,
            code=code or _unique_code(program, name or email.split("@")[0]),
            status=status,
            group=group,
            livemode=livemode,
            approved_at=timezone.now() if status == Affiliate.Status.ACTIVE else None,
            **extra,
        )
        try:
            with transaction.atomic():
                affiliate.save()
        except IntegrityError as exc:  # a concurrent request took the code or email first
            raise Conflict("code", "The code or email was taken by a concurrent request.") from exc
        audit_log(
            actor=actor,
            action="affiliate.created",
            obj=affiliate,
            data={"status": status, "code": affiliate.code},
        )
    return affiliate


ALLOWED_TRANSITIONS = {
    Affiliate.Status.PENDING: {Affiliate.Status.ACTIVE, Affiliate.Status.REJECTED},
    Affiliate.Status.ACTIVE: {Affiliate.Status.SUSPENDED},
    Affiliate.Status.SUSPENDED: {Affiliate.Status.ACTIVE, Affiliate.Status.REJECTED},
    Affiliate.Status.REJECTED: {Affiliate.Status.ACTIVE},
}


class InvalidTransition(Exception):
    pass


def affiliate_set_status(
    *, affiliate: Affiliate, status: str, reason: str = "", actor: Actor | None = None
) -> Affiliate:
    """Approve, reject, suspend or reactivate. Setting the current status again is a no-op."""
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        if locked.status == status:
            return locked
        if status not in ALLOWED_TRANSITIONS.get(locked.status, set()):
            raise InvalidTransition(f"An affiliate cannot go from {locked.status} to {status}.")
        previous = locked.status
        locked.status = status
        locked.status_reason = reason[:500]
        if status == Affiliate.Status.ACTIVE and not locked.approved_at:
            locked.approved_at = timezone.now()
        locked.save(update_fields=["status", "status_reason", "approved_at"])
        audit_log(
            actor=actor, action=f"affiliate.{status}", obj=locked, data={"from": previous, "reason": reason}
        )
        # Approval provisions the promotion code in Stripe, suspension deactivates it, return
        # reactivates it (affiliates/provisioning.py).
        queue_promotion_code_sync(locked.pk)
        if previous == Affiliate.Status.PENDING and status in (
            Affiliate.Status.ACTIVE,
            Affiliate.Status.REJECTED,
        ):
            _notify_decision(locked, status, reason)
    return locked


def affiliate_set_group(
    *, affiliate: Affiliate, group: PartnerGroup | None, actor: Actor | None = None
) -> Affiliate:
    with transaction.atomic():
        Affiliate.objects.filter(pk=affiliate.pk).update(group=group)
        audit_log(
            actor=actor,
            action="affiliate.group_changed",
            obj=affiliate,
            data={"group": group.public_id if group else None},
        )
        queue_promotion_code_sync(affiliate.pk)  # the group may have a reward of its own
    affiliate.refresh_from_db()
    return affiliate


def affiliate_set_code(*, affiliate: Affiliate, code: str, actor: Actor | None = None) -> Affiliate:
    """Give an affiliate a new referral code. The old code stops naming them at once (the click
    path's lookup cache may still know it for its few seconds); links already shared with the old
    code then land without attribution, which is what the merchant asks for by changing it.
    A code taken by another affiliate of the program, in either mode, raises Conflict."""
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        if locked.code == code:
            return locked
        taken = Affiliate.objects.filter(program_id=locked.program_id, code_key=code.lower()).exclude(
            pk=locked.pk
        )
        if taken.exists() or promotion_code_taken(
            program=locked.program, code=code.replace("_", "-"), affiliate=locked
        ):
            raise Conflict("code", f"The code {code!r} is already taken in this program.")
        previous = locked.code
        locked.code = code
        try:
            with transaction.atomic():
                locked.save(update_fields=["code", "code_key"])
        except IntegrityError as exc:  # a concurrent request took the code first
            raise Conflict("code", "The code was taken by a concurrent request.") from exc
        audit_log(
            actor=actor, action="affiliate.code_changed", obj=locked, data={"from": previous, "to": code}
        )
    return locked


def affiliate_set_paypal_email(
    *, affiliate: Affiliate, paypal_email: str | None, actor: Actor | None = None
) -> Affiliate:
    """Pay an affiliate by PayPal to this address, or (None) stop paying them by PayPal. The
    caller validates the address with validate_paypal_email. Audited: it decides where money goes."""
    email = (paypal_email or "").strip().lower()
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        previous = {"method": locked.payout_method, "paypal_email": locked.paypal_email}
        if email:
            target = {"method": Affiliate.PayoutMethod.PAYPAL, "paypal_email": email}
        elif locked.payout_method == Affiliate.PayoutMethod.PAYPAL:
            target = {"method": Affiliate.PayoutMethod.NONE, "paypal_email": ""}
        else:
            target = {"method": locked.payout_method, "paypal_email": ""}
        if previous == target:
            return locked
        locked.payout_method = target["method"]
        locked.paypal_email = target["paypal_email"]
        locked.save(update_fields=["payout_method", "paypal_email"])
        audit_log(
            actor=actor,
            action="affiliate.payout_method_changed",
            obj=locked,
            data={"from": previous, "to": target},
        )
    return locked


UNCHANGED: Any = object()  # affiliate_update's default: leave the field as it is


def affiliate_update(
    *,
    affiliate: Affiliate,
    actor: Actor | None,
    status: str | None = None,
    reason: str = "",
    group: PartnerGroup | None = UNCHANGED,
    code: str | None = None,
    paypal_email: str | None = UNCHANGED,
    promotion_code: str | None = None,
) -> Affiliate:
    """Change several things of an affiliate at once, all or nothing: a taken code (Conflict) or a
    refused status change (InvalidTransition) undoes the other changes of the same request. Each
    change writes its own audit row, through the single-purpose services above."""
    with transaction.atomic():
        if code is not None:
            affiliate = affiliate_set_code(affiliate=affiliate, code=code, actor=actor)
        if group is not UNCHANGED:
            affiliate = affiliate_set_group(affiliate=affiliate, group=group, actor=actor)
        if paypal_email is not UNCHANGED:
            affiliate = affiliate_set_paypal_email(
                affiliate=affiliate, paypal_email=paypal_email, actor=actor
            )
        if promotion_code is not None:
            promotion_code_set(affiliate=affiliate, code=promotion_code, actor=actor)
        if status:
            affiliate = affiliate_set_status(affiliate=affiliate, status=status, reason=reason, actor=actor)
    return affiliate


def _notify_decision(affiliate: Affiliate, status: str, reason: str) -> None:
    """Tell an applicant the outcome of their application (queued after commit)."""
    from refapp.emails import send_templated

    if not affiliate.livemode:
        return  # test data made through the API: its address may be anyone's, and nobody applied

    context = {
        "name": affiliate.name,
        "program": affiliate.program.name,
        "reason": reason,
        "portal_url": settings.BASE_URL + reverse("portal:login"),
    }
    name = "affiliate_approved" if status == Affiliate.Status.ACTIVE else "affiliate_rejected"
    send_templated(name, to=[affiliate.email], context=context)


def affiliate_invite(
    *,
    program: Program,
    email: str,
    name: str,
    code: str | None = None,
    group: PartnerGroup | None = None,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> Affiliate:
    """Create an active affiliate and email them a single-use sign-in link to the portal."""
    from refapp.emails import send_templated

    from .magic import link_create

    now = now or timezone.now()
    with transaction.atomic():
        affiliate = affiliate_create(
            program=program,
            email=email,
            name=name,
            code=code,
            status=Affiliate.Status.ACTIVE,
            group=group,
            actor=actor,
        )
        token = link_create(purpose="login", email=affiliate.email, now=now)
        send_templated(
            "affiliate_invited",
            to=[affiliate.email],
            context={
                "name": affiliate.name,
                "program": program.name,
                "url": settings.BASE_URL + reverse("portal:magic", args=[token]),
                "code": affiliate.code,
                "minutes": 30,
            },
        )
    return affiliate


# --- partner groups ---------------------------------------------------------------------------


def group_create(*, program: Program, name: str, is_active: bool = True, actor: Actor | None) -> PartnerGroup:
    try:
        with transaction.atomic():
            group = PartnerGroup.objects.create(program=program, name=name, is_active=is_active)
            audit_log(actor=actor, action="group.created", obj=group, data={"name": name})
    except IntegrityError as exc:  # the unique (program, name) index, raced by a concurrent request
        raise Conflict("name", "Another group of this program already has this name.") from exc
    return group


def group_update(*, group: PartnerGroup, name: str, is_active: bool, actor: Actor | None) -> PartnerGroup:
    """Rename or (de)activate a group. Deactivating keeps its members; its rules stop applying."""
    try:
        with transaction.atomic():
            locked = PartnerGroup.objects.select_for_update().get(pk=group.pk)
            changes = {
                field: [getattr(locked, field), value]
                for field, value in (("name", name), ("is_active", is_active))
                if getattr(locked, field) != value
            }
            if not changes:
                return locked
            locked.name, locked.is_active = name, is_active
            locked.save(update_fields=["name", "is_active"])
            audit_log(actor=actor, action="group.updated", obj=locked, data=changes)
            if "is_active" in changes:  # its friend reward starts or stops applying to its members
                for member_id in locked.affiliates.order_by("pk").values_list("pk", flat=True):
                    queue_promotion_code_sync(member_id)
    except IntegrityError as exc:
        raise Conflict("name", "Another group of this program already has this name.") from exc
    return locked


# --- the program's team (panel staff) -------------------------------------------------------------


class LastAdmin(Exception):
    """The change would leave the program without an admin."""


def _other_admins(member: ProgramStaff) -> bool:
    return (
        ProgramStaff.objects.filter(program_id=member.program_id, role=ProgramStaff.Role.ADMIN)
        .exclude(pk=member.pk)
        .exists()
    )


def staff_invite(*, program: Program, email: str, role: str, actor: Actor | None = None) -> ProgramStaff:
    """Add a person to the program's team with a role, creating their staff account if needed.

    A new account has no password: the email carries a link to set one (Django's password reset
    token, which stops working once a password is set). Someone who already has an account is told
    they were added. Raises Conflict if they are already on the team."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from refapp.emails import send_templated

    email = User.objects.normalize_email(email).strip()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(email__iexact=email).order_by("pk").first()
        created = user is None
        if created:
            if User.objects.filter(username__iexact=email).exists():
                raise Conflict("email", "An account with this user name already exists.")
            user = User(username=email, email=email, is_staff=True)
            user.set_unusable_password()
            user.save()
            audit_log(actor=actor, action="user.created", obj=user, data={"invited_to": program.slug})
        elif not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        if ProgramStaff.objects.filter(program=program, user=user).exists():
            raise Conflict("email", "This person is already on the team.")
        member = ProgramStaff.objects.create(program=program, user=user, role=role)
        audit_log(actor=actor, action="staff.invited", obj=member, data={"email": email, "role": role})
        context = {
            "program": program.name,
            "role": member.get_role_display(),
            "inviter": actor.label if actor else "",
        }
        if user.has_usable_password():
            context["url"] = settings.BASE_URL + reverse("panel:dashboard", args=[program.slug])
            context["set_password"] = False
        else:
            token = default_token_generator.make_token(user)
            uid = urlsafe_base64_encode(force_bytes(user.pk))
            context["url"] = settings.BASE_URL + reverse("panel:welcome", args=[uid, token])
            context["set_password"] = True
        send_templated("staff_invited", to=[email], context=context)
    return member


def staff_set_role(*, member: ProgramStaff, role: str, actor: Actor | None = None) -> ProgramStaff:
    """Change a team member's role. Raises LastAdmin rather than leave the program without one."""
    with transaction.atomic():
        locked = ProgramStaff.objects.select_for_update().get(pk=member.pk)
        if locked.role == role:
            return locked
        if locked.role == ProgramStaff.Role.ADMIN and not _other_admins(locked):
            raise LastAdmin
        old = locked.role
        locked.role = role
        locked.save(update_fields=["role"])
        audit_log(actor=actor, action="staff.role_changed", obj=locked, data={"from": old, "to": role})
    return locked


def staff_remove(*, member: ProgramStaff, actor: Actor | None = None) -> None:
    """Take a person off the program's team and end their sessions, so that a browser they are
    signed in with loses access at once. Someone left on no team loses panel access altogether.
    Raises LastAdmin rather than leave the program without an admin."""
    with transaction.atomic():
        locked = ProgramStaff.objects.select_for_update().filter(pk=member.pk).first()
        if locked is None:
            return  # already removed
        if locked.role == ProgramStaff.Role.ADMIN and not _other_admins(locked):
            raise LastAdmin
        user = locked.user
        audit_log(
            actor=actor,
            action="staff.removed",
            obj=locked,
            data={"user": user.pk, "email": user.email, "role": locked.role},
        )
        locked.delete()
        if not user.is_superuser and not ProgramStaff.objects.filter(user=user).exists():
            user.is_staff = False
            user.save(update_fields=["is_staff"])
        sessions_end(user=user)


def sessions_end(*, user: User) -> int:
    """Delete every stored session signed in as this user. The session store is the database (one
    row per session, the user id inside the signed data), so this reads the unexpired sessions; a
    team change is rare and sessions are few beside clicks."""
    from django.contrib.sessions.models import Session

    ended = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk)
    ]
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)
