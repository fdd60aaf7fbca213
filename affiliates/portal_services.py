"""Writes the affiliates make themselves: join applications, portal sign-in, their own settings.

Join applications and email verification
----------------------------------------
An application must not create an Affiliate before its email is verified (unverified rows would
fill the admins' queue and block the address for its real owner), and MagicLink has no field for
the form data. So the verification URL carries the application itself, signed with
`django.core.signing` (tamper-proof; not encrypted, but it travels only to the applicant's own
inbox and holds only what they typed), together with the token of a MagicLink(purpose=verify).
The MagicLink makes the URL single-use and expiring, and it, not the signed payload, is the
authority for the email and the program.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from refapp.emails import send_templated
from refapp.hashing import salted_hash
from refapp.models import Actor, audit_log

from .bank import clean_account_number, clean_bic, clean_iban, clean_routing_number, clean_tax_id
from .magic import VERIFY_TTL, link_consume, link_create, link_peek, login_link_deliver
from .models import (
    Affiliate,
    MagicLink,
    PortalSession,
    Program,
    ProgramStaff,
    TaxForm,
    TaxProfile,
    validate_paypal_email,
)
from .services import Conflict, affiliate_create

JOIN_SALT = "refapp.join.verify"


def affiliate_actor(affiliate: Affiliate) -> Actor:
    return Actor(f"affiliate:{affiliate.public_id}")


# --- magic links --------------------------------------------------------------------------


def link_usable(*, token: str, purpose: str, now: datetime, program: Program | None = None) -> bool:
    """Whether a link would be accepted, without using it (for the confirm page before the POST)."""
    link = link_peek(token=token, purpose=purpose, now=now)
    return link is not None and (program is None or link.program_id == program.pk)


# --- portal sign-in -----------------------------------------------------------------------


def portal_sessions_record(*, email: str, ip: str, now: datetime) -> int:
    """Remember the network of a sign-in for every membership of the email.

    One sign-in covers all the programs of the email, and each program checks self-referral
    against its own affiliate row, so each membership gets its own row.
    """
    ip_hash = salted_hash("ip", ip) if ip else ""
    if not ip_hash:
        return 0
    memberships = Affiliate.objects.filter(email=email.strip().lower(), livemode=True).exclude(
        status=Affiliate.Status.REJECTED
    )
    rows = [PortalSession(affiliate=a, ip_hash=ip_hash, created_at=now) for a in memberships]
    PortalSession.objects.bulk_create(rows)
    return len(rows)


# --- the affiliate's own settings ---------------------------------------------------------


def _payout_destination(affiliate: Affiliate) -> dict[str, str]:
    """Where this membership is paid, as audit rows and emails may show it: bank numbers masked."""
    method = affiliate.payout_method
    if method == Affiliate.PayoutMethod.PAYPAL:
        return {"method": "paypal", "paypal_email": affiliate.paypal_email}
    if method == Affiliate.PayoutMethod.WISE:
        return {"method": "wise", "wise_email": affiliate.wise_email}
    if method == Affiliate.PayoutMethod.BANK:
        return {"method": "bank", "account": affiliate.bank_display, "holder": affiliate.bank_account_holder}
    return {"method": method}


def _payout_destination_changed(locked: Affiliate, previous: dict[str, str]) -> None:
    """Audit the change (masked) and tell the affiliate at their sign-in address, after commit: a
    changed payout destination is how a hijacked account steals money, and the owner must hear."""
    current = _payout_destination(locked)
    audit_log(
        actor=affiliate_actor(locked),
        action="affiliate.payout_method_changed",
        obj=locked,
        data={"from": previous, "to": current},
    )
    payout_destination_notify(locked)


def payout_destination_notify(affiliate: Affiliate) -> None:
    """Email the affiliate where their payouts now go (bank numbers masked): after the portal's
    own change, and after an import that changed it (commissions.imports)."""
    current = _payout_destination(affiliate)
    send_templated(
        "payout_details_changed",
        to=[affiliate.email],
        context={
            "name": affiliate.name,
            "program": affiliate.program.name,
            "method": affiliate.get_payout_method_display(),
            "destination": current.get("paypal_email")
            or current.get("wise_email")
            or current.get("account", ""),
            "url": settings.BASE_URL + reverse("portal:payout-settings"),
        },
    )


def affiliate_payout_paypal_set(*, affiliate: Affiliate, paypal_email: str) -> Affiliate:
    """Pay this membership by PayPal to the given address. Audited: it decides where money goes."""
    paypal_email = paypal_email.strip().lower()
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().select_related("program").get(pk=affiliate.pk)
        if (locked.payout_method, locked.paypal_email) == (Affiliate.PayoutMethod.PAYPAL, paypal_email):
            return locked
        previous = _payout_destination(locked)
        locked.payout_method = Affiliate.PayoutMethod.PAYPAL
        locked.paypal_email = paypal_email
        locked.save(update_fields=["payout_method", "paypal_email"])
        _payout_destination_changed(locked, previous)
    return locked


def affiliate_payout_wise_set(*, affiliate: Affiliate, wise_email: str) -> Affiliate:
    """Pay this membership through Wise to the given email (Wise asks the recipient for the bank)."""
    wise_email = wise_email.strip().lower()
    validate_paypal_email(wise_email)  # an email that no spreadsheet runs as a formula
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().select_related("program").get(pk=affiliate.pk)
        if (locked.payout_method, locked.wise_email) == (Affiliate.PayoutMethod.WISE, wise_email):
            return locked
        previous = _payout_destination(locked)
        locked.payout_method = Affiliate.PayoutMethod.WISE
        locked.wise_email = wise_email
        locked.save(update_fields=["payout_method", "wise_email"])
        _payout_destination_changed(locked, previous)
    return locked


@dataclass(frozen=True)
class BankDetails:
    """A SEPA account (iban, bic) or a US ACH account (account_number, routing_number, type)."""

    holder: str
    iban: str = ""
    bic: str = ""
    account_number: str = ""
    routing_number: str = ""
    account_type: str = ""


BANK_FIELDS = (
    "bank_account_holder",
    "bank_iban",
    "bank_bic",
    "bank_account_number",
    "bank_routing_number",
    "bank_account_type",
)


def bank_details_clean(details: BankDetails) -> dict[str, str]:
    """The affiliate's bank fields for these details, checked again (the form checked them first):
    schwifty for IBAN and BIC, the ABA checksum for routing numbers. Raises ValidationError."""
    holder = " ".join(details.holder.split())
    if not holder:
        raise ValidationError({"holder": ["Enter the account holder's name as the bank knows it."]})
    if len(holder) > 70:
        raise ValidationError({"holder": ["At most 70 characters (the SEPA limit)."]})
    fields = dict.fromkeys(BANK_FIELDS, "")
    fields["bank_account_holder"] = holder
    if details.iban:
        iban = clean_iban(details.iban)
        fields["bank_iban"] = str(iban.compact)
        fields["bank_bic"] = clean_bic(details.bic, iban)
        return fields
    if details.account_type not in Affiliate.BankAccountType.values:
        raise ValidationError({"account_type": ["Choose checking or savings."]})
    fields["bank_account_number"] = clean_account_number(details.account_number)
    fields["bank_routing_number"] = clean_routing_number(details.routing_number)
    fields["bank_account_type"] = details.account_type
    return fields


def affiliate_payout_bank_set(*, affiliate: Affiliate, details: BankDetails) -> Affiliate:
    """Pay this membership by bank transfer to these details. Audited (masked) and the affiliate is
    emailed; saving the same details again changes nothing."""
    fields = bank_details_clean(details)
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().select_related("program").get(pk=affiliate.pk)
        if locked.payout_method == Affiliate.PayoutMethod.BANK and all(
            getattr(locked, name) == value for name, value in fields.items()
        ):
            return locked
        previous = _payout_destination(locked)
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.payout_method = Affiliate.PayoutMethod.BANK
        locked.save(update_fields=["payout_method", *fields])
        _payout_destination_changed(locked, previous)
    return locked


# --- tax details ----------------------------------------------------------------------------------

TAX_FORM_MAX_BYTES = 5 * 1024 * 1024
# What the file's first bytes must be, by the type it is stored and served as: the name and the
# browser's content type are the uploader's word, the bytes are not.
TAX_FORM_TYPES = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}


@dataclass(frozen=True)
class TaxDetails:
    legal_name: str
    country: str
    is_business: bool
    tax_id: str
    form_type: str = ""


@dataclass(frozen=True)
class UploadedForm:
    filename: str
    content: bytes


def tax_form_type(content: bytes) -> str:
    """The content type of an uploaded form by its bytes; ValidationError for anything else."""
    if len(content) > TAX_FORM_MAX_BYTES:
        raise ValidationError(f"The file is too large: at most {TAX_FORM_MAX_BYTES // (1024 * 1024)} MB.")
    if not content:
        raise ValidationError("The file is empty.")
    for content_type, magics in TAX_FORM_TYPES.items():
        if content.startswith(magics):
            return content_type
    raise ValidationError("Upload the form as a PDF, PNG or JPEG file.")


def tax_details_clean(details: TaxDetails, *, has_form: bool) -> dict:
    """The TaxProfile fields for these details; ValidationError naming the field otherwise."""
    legal_name = " ".join(details.legal_name.split())
    country = details.country.strip().upper()
    errors: dict[str, list[str]] = {}
    if not legal_name:
        errors["legal_name"] = ["Enter your legal name (or your business's)."]
    if len(country) != 2 or not country.isalpha():
        errors["country"] = ["Choose your country."]
    tax_id = None
    if "country" not in errors:
        try:
            tax_id = clean_tax_id(details.tax_id, country)
        except ValidationError as exc:
            errors["tax_id"] = exc.messages
    form_type = details.form_type
    if country == "US":
        if form_type != TaxProfile.FormType.W9:
            errors["form_type"] = ["A US person gives a W-9."]
        elif not has_form:
            errors["form_file"] = ["Upload your signed W-9."]
    elif form_type == TaxProfile.FormType.W9:
        errors["form_type"] = ["A W-9 is for US persons; choose W-8BEN or W-8BEN-E, or none."]
    elif form_type and form_type not in TaxProfile.FormType.values:
        errors["form_type"] = ["Choose a form type."]
    if form_type and form_type != TaxProfile.FormType.W9 and not has_form:
        errors["form_file"] = ["Upload the form you chose."]
    if errors:
        raise ValidationError(errors)
    return {
        "legal_name": legal_name[:200],
        "country": country,
        "is_business": bool(details.is_business),
        "tax_id": tax_id.number,
        "tax_id_kind": tax_id.kind,
        "form_type": form_type,
    }


def affiliate_tax_details_set(
    *, affiliate: Affiliate, details: TaxDetails, upload: UploadedForm | None, now: datetime
) -> TaxProfile:
    """Record the affiliate's tax details and, if given, their form. Validated here, one
    transaction, audited (the tax id masked). A payout held for missing tax details is paid by the
    next run: the held money never left the approved balance."""
    content_type = tax_form_type(upload.content) if upload is not None else ""
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        has_form = upload is not None or TaxForm.objects.filter(affiliate=locked).exists()
        fields = tax_details_clean(details, has_form=has_form)
        profile = TaxProfile.objects.filter(affiliate=locked).first()
        changed = sorted(
            name for name, value in fields.items() if profile is None or getattr(profile, name) != value
        )
        if profile is None:
            profile = TaxProfile(affiliate=locked, **fields, updated_at=now)
        else:
            for name, value in fields.items():
                setattr(profile, name, value)
            profile.updated_at = now
        if changed:
            profile.save()
        if upload is not None:
            name = "".join(ch for ch in upload.filename.rsplit("/", 1)[-1] if ch.isprintable())[:200]
            TaxForm.objects.update_or_create(
                affiliate=locked,
                defaults={
                    "filename": name or "form",
                    "content_type": content_type,
                    "size": len(upload.content),
                    "sha256": hashlib.sha256(upload.content).hexdigest(),
                    "content": upload.content,
                    "uploaded_at": now,
                },
            )
            changed.append("form_file")
        if changed:
            audit_log(
                actor=affiliate_actor(locked),
                action="affiliate.tax_details_changed",
                obj=locked,
                data={"fields": changed, "country": fields["country"], "tax_id": profile.tax_id_display},
            )
    return profile


def tax_details_complete(affiliate_ids) -> set[int]:
    """Which of these affiliates have complete tax details: a profile (it is only ever saved
    complete) and, for a US person, their W-9 on file."""
    complete = set(
        TaxProfile.objects.filter(affiliate_id__in=affiliate_ids)
        .exclude(country="US")
        .values_list("affiliate_id", flat=True)
    )
    complete |= set(
        TaxProfile.objects.filter(
            affiliate_id__in=affiliate_ids, country="US", affiliate__tax_form__isnull=False
        ).values_list("affiliate_id", flat=True)
    )
    return complete


def affiliate_profile_update(*, affiliate: Affiliate, name: str, website: str, promotion: str) -> Affiliate:
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        changed = {
            field: value
            for field, value in {"name": name, "website": website, "promotion": promotion}.items()
            if getattr(locked, field) != value
        }
        if not changed:
            return locked
        for field, value in changed.items():
            setattr(locked, field, value)
        locked.save(update_fields=list(changed))
        audit_log(
            actor=affiliate_actor(locked),
            action="affiliate.profile_changed",
            obj=locked,
            data={"fields": sorted(changed)},
        )
    return locked


# --- join applications --------------------------------------------------------------------


@dataclass(frozen=True)
class Application:
    name: str
    email: str
    website: str = ""
    promotion: str = ""
    terms_accepted: bool = False


def join_application_start(*, program: Program, application: Application, now: datetime) -> None:
    """Queue the handling of an application; the worker emails a verification link or a sign-in link.

    The request does the same work whatever the email (one task queued after commit), so that the
    time of the answer does not tell whether the address already belongs to this program.
    """
    payload = {
        "name": application.name,
        "email": application.email.strip().lower(),
        "website": application.website,
        "promotion": application.promotion,
        "terms_accepted": application.terms_accepted,
    }
    transaction.on_commit(lambda: join_application_send.delay(program.pk, payload, now.isoformat()))


@shared_task(acks_late=True)
def join_application_send(program_id: int, application: dict, now_iso: str) -> bool:
    program = Program.objects.filter(pk=program_id).first()
    if program is None:
        return False
    return join_application_deliver(
        program=program, application=Application(**application), now=datetime.fromisoformat(now_iso)
    )


def join_application_deliver(*, program: Program, application: Application, now: datetime) -> bool:
    """Email a verification link for a new application; returns whether one was sent (in the worker).

    An email that already belongs to this program gets a sign-in link instead (when it may sign
    in), and nothing is created.
    """
    email = application.email.strip().lower()
    existing = Affiliate.objects.filter(program=program, email=email).first()
    if existing is not None:
        if existing.status != Affiliate.Status.REJECTED:
            login_link_deliver(email=email, now=now, next_path="/portal/")
        return False
    with transaction.atomic():
        token = link_create(purpose=MagicLink.Purpose.VERIFY, email=email, now=now, program=program)
        payload = {
            "t": token,
            "n": application.name,
            "w": application.website,
            "p": application.promotion,
            "a": application.terms_accepted,
        }
        signed = signing.dumps(payload, salt=JOIN_SALT, compress=True)
        url = settings.BASE_URL + reverse("join:verify", args=[program.slug, signed])
        send_templated(
            "join_verify",
            to=[email],
            context={
                "name": application.name,
                "program": program.name,
                "url": url,
                "days": VERIFY_TTL.days,
            },
        )
    return True


class InvalidJoinLink(Exception):
    """Unknown, tampered, expired or already used verification link."""


def _read_join_token(signed: str) -> dict:
    try:
        data = signing.loads(signed, salt=JOIN_SALT, max_age=VERIFY_TTL)
    except signing.BadSignature as exc:  # includes SignatureExpired
        raise InvalidJoinLink from exc
    if not isinstance(data, dict) or not isinstance(data.get("t"), str):
        raise InvalidJoinLink
    return data


def join_link_usable(*, program: Program, signed: str, now: datetime) -> bool:
    try:
        data = _read_join_token(signed)
    except InvalidJoinLink:
        return False
    return link_usable(token=data["t"], purpose=MagicLink.Purpose.VERIFY, now=now, program=program)


def program_admin_emails(program: Program) -> list[str]:
    """Who hears about new applications: the program's admins, else the superusers."""
    admins = User.objects.filter(
        is_active=True,
        program_roles__program=program,
        program_roles__role=ProgramStaff.Role.ADMIN,
    ).exclude(email="")
    emails = sorted({u.email for u in admins})
    if not emails:
        emails = sorted(
            set(
                User.objects.filter(is_active=True, is_superuser=True)
                .exclude(email="")
                .values_list("email", flat=True)
            )
        )
    return emails


def join_application_verify(*, program: Program, signed: str, now: datetime) -> Affiliate:
    """Use a verification link: create the affiliate (active when the program auto-approves).

    Single use: the MagicLink is consumed in the same transaction that creates the affiliate, so a
    failure leaves the link usable and a replay finds it used. If the email joined meanwhile (a
    second application, an admin invite), the existing membership is returned and nothing is sent.
    """
    data = _read_join_token(signed)
    with transaction.atomic():
        link = link_consume(token=data["t"], purpose=MagicLink.Purpose.VERIFY, now=now)
        if link is None or link.program_id != program.pk:
            raise InvalidJoinLink
        status = Affiliate.Status.ACTIVE if program.auto_approve else Affiliate.Status.PENDING
        try:
            affiliate = affiliate_create(
                program=program,
                email=link.email,
                name=str(data.get("n", ""))[:200] or link.email.split("@")[0],
                status=status,
                actor=Actor(f"applicant:{link.email}"[:100]),
                website=str(data.get("w", ""))[:500],
                promotion=str(data.get("p", "")),
            )
        except Conflict:
            existing = Affiliate.objects.filter(program=program, email=link.email).first()
            if existing is None:
                raise  # a code race, not a duplicate email: let the applicant retry the link
            return existing
        if program.terms_url:
            audit_log(
                actor=Actor(f"applicant:{link.email}"[:100]),
                action="affiliate.terms_accepted",
                obj=affiliate,
                data={"terms_url": program.terms_url, "accepted": bool(data.get("a")), "at": now.isoformat()},
            )
        _notify_new_affiliate(program=program, affiliate=affiliate)
    return affiliate


def _notify_new_affiliate(*, program: Program, affiliate: Affiliate) -> None:
    panel_url = settings.BASE_URL + reverse(
        "panel:affiliate-detail", args=[program.slug, affiliate.public_id]
    )
    recipients = program_admin_emails(program)
    if recipients:
        send_templated(
            "join_admin_notice",
            to=recipients,
            context={
                "program": program.name,
                "name": affiliate.name,
                "email": affiliate.email,
                "website": affiliate.website,
                "promotion": affiliate.promotion,
                "status": affiliate.status,
                "url": panel_url,
            },
        )
    portal_url = settings.BASE_URL + reverse("portal:login")
    name = "join_welcome" if affiliate.status == Affiliate.Status.ACTIVE else "join_received"
    send_templated(
        name,
        to=[affiliate.email],
        context={"name": affiliate.name, "program": program.name, "portal_url": portal_url},
    )
