"""The challan notice: a one-page PDF with the evidence photo, the amounts by date and a verification code."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from datetime import timedelta

import qrcode
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas
from sqlalchemy.orm import Session

from safecity.challans import service
from safecity.challans.models import Challan, ChallanRules
from safecity.challans.payments import slips
from safecity.core.clock import format_day, format_moment
from safecity.core.errors import InvalidInput, SafeCityError
from safecity.core.images import check_image
from safecity.core.media import MediaStore
from safecity.evidence import service as media_owners
from safecity.settings import Settings

log = logging.getLogger(__name__)

ADDRESS_HINT = (
    "set SAFECITY_PUBLIC_BASE_URL (or public_base_url in the YAML file) to the address citizens reach "
    "this centre at, e.g. https://echallan.example.gov.pk"
)


def portal_address(settings: Settings) -> str:
    """Returns the portal address notices print: public_base_url's, else (embedded only) the listen address.

    A city (bus=nats) without public_base_url is refused: a notice must name an address the citizen
    can reach, never a guess.
    """
    if settings.public_base_url:
        return f"{settings.public_base_url}/portal"
    if settings.bus == "nats":
        raise InvalidInput(
            "public_base_url is not set: notices would print no address a citizen can reach",
            hint=ADDRESS_HINT,
        )
    scheme = "https" if settings.ssl_certfile else "http"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"{scheme}://{host}:{settings.port}/portal"


def check_portal_address(settings: Settings) -> str:
    """Returns the portal address at the start of notice rendering, warning when it is only a guess."""
    address = portal_address(settings)
    if not settings.public_base_url:
        log.warning(
            "public_base_url is not set: notices, QR codes and SMS print %s, this server's own listen "
            "address, which citizens elsewhere cannot reach; %s",
            address,
            ADDRESS_HINT,
        )
    return address


def render_pdf(challan: Challan, rules: ChallanRules, media: MediaStore, *, portal: str) -> bytes:
    """Returns the notice of a challan as PDF bytes; `portal` is the address it sends the citizen to."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"e-Challan {challan.number}")
    pdf.setAuthor("Traffic Police — Safe City e-Challan")
    width, height = A4
    left, top = 18 * mm, height - 18 * mm

    pdf.setFillColor(colors.HexColor("#12355b"))
    pdf.rect(0, height - 30 * mm, width, 30 * mm, stroke=0, fill=1)
    pdf.setFillColor(colors.white)
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(left, top - 2 * mm, "TRAFFIC POLICE — e-CHALLAN NOTICE")
    pdf.setFont("Helvetica", 10)
    pdf.drawString(
        left, top - 8 * mm, f"Challan No. {challan.number}    Issued {format_day(challan.issued_at)}"
    )

    offence = rules.offences.get(challan.offence)
    label = offence.label if offence and offence.label else challan.offence.replace("_", " ")
    evidence = challan.evidence or {}
    # Dates and amounts from the challan clock itself, as the portal, SMS and API show them.
    dates = service.clock_dates(challan, rules, challan.issued_at)
    half = service.amount_due(challan, rules, dates["discount_until"])
    late = service.amount_due(challan, rules, dates["due_at"] + timedelta(microseconds=1))
    cur = rules.currency

    y = height - 42 * mm
    pdf.setFillColor(colors.black)
    rows: Sequence[tuple[str, str]] = [
        ("Owner", challan.owner),
        ("Address", challan.address),
        ("Vehicle", challan.plate),
        ("Offence", label),
        ("When", format_moment(challan.offence_at, "seconds")),
        ("Camera", challan.camera_id or "—"),
        ("Measured", _measure(evidence)),
        ("Clock", str(evidence.get("clock_source") or "—")[:90]),
        ("Demerit points", str(challan.points)),
    ]
    for name, value in rows:
        pdf.setFont("Helvetica-Bold", 10)
        pdf.drawString(left, y, name)
        pdf.setFont("Helvetica", 10)
        pdf.drawString(left + 32 * mm, y, str(value)[:95])
        y -= 6 * mm

    y -= 2 * mm
    pdf.setFont("Helvetica-Bold", 11)
    pdf.drawString(left, y, "Amount to pay")
    y -= 6 * mm
    pdf.setFont("Helvetica", 10)
    amounts = [
        f"{cur} {half:,} if paid by {format_day(dates['discount_until'])} ({rules.discount_pct}% off)",
        f"{cur} {challan.fine:,} if paid by {format_day(dates['due_at'])} (due date)",
        f"{cur} {late:,} from then on; licence flagged after {rules.licence_flag_days} days unpaid, "
        f"CNIC after {rules.cnic_flag_days}",
        f"Appeal by {format_day(dates['appeal_until'])} at the portal; an appeal stops the clock until "
        "decided.",
    ]
    if half == challan.fine:  # no discount period in this schedule
        amounts.pop(0)
    for text in amounts:
        pdf.drawString(left, y, text)
        y -= 5.5 * mm

    photo_top = y - 4 * mm
    for index, ref in enumerate([evidence.get("photo"), evidence.get("plate_crop")]):
        image = _image(media, ref)
        if image is None:
            continue
        box_w = 110 * mm if index == 0 else 50 * mm
        iw, ih = image.getSize()
        box_h = min(75 * mm, box_w * ih / max(iw, 1))
        x = left if index == 0 else left + 118 * mm
        pdf.drawImage(image, x, photo_top - box_h, width=box_w, height=box_h, preserveAspectRatio=True)
        pdf.setFont("Helvetica", 8)
        pdf.drawString(x, photo_top - box_h - 4 * mm, "Evidence photo" if index == 0 else "Number plate")

    code_text = f"{portal}?verify={challan.verification_code}"
    pdf.drawImage(_qr(code_text), width - 48 * mm, 18 * mm, width=30 * mm, height=30 * mm)
    raast = slips.raast_qr(rules.payments, challan)
    if raast is not None:
        pdf.drawImage(_qr(raast), width - 82 * mm, 18 * mm, width=30 * mm, height=30 * mm)
        pdf.setFont("Helvetica", 7)
        pdf.drawString(width - 82 * mm, 15 * mm, "Pay by Raast: scan in any bank app")
    pdf.setFont("Helvetica-Bold", 11)
    pdf.drawString(left, 42 * mm, f"PSID (payment slip id): {challan.psid or challan.number}")
    pdf.drawString(left, 36 * mm, f"Verification code: {challan.verification_code}")
    pdf.setFont("Helvetica", 9)
    pdf.drawString(left, 30 * mm, f"Check this notice, see the evidence or appeal at {portal}")
    pdf.drawString(
        left, 25 * mm, "with your vehicle's plate and the owner's CNIC. Pay with the PSID by 1Bill in"
    )
    pdf.drawString(
        left, 20 * mm, "any bank or wallet app (JazzCash, Easypaisa), at any bank branch, or by Raast."
    )
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def render_notice(session: Session, media: MediaStore, number: str, *, portal: str) -> str:
    """Renders (or re-renders) a challan's notice into the media store and returns its ref."""
    challan = service.get_challan(session, number)
    ref = media.put(render_pdf(challan, service.get_rules(session), media, portal=portal), "pdf")
    challan.notice_ref = ref
    media_owners.own(session, "challan_notice", challan.id, [ref])
    return ref


def _qr(text: str) -> ImageReader:
    qr = qrcode.QRCode(border=1, box_size=4)
    qr.add_data(text)
    png = io.BytesIO()
    qr.make_image().save(png)
    png.seek(0)
    return ImageReader(png)


def _measure(evidence: dict[str, object]) -> str:
    measured, limit, unit = evidence.get("measured"), evidence.get("limit"), evidence.get("unit") or ""
    if measured is None:
        return "—"
    if unit == "km/h":
        return f"{measured} km/h where the limit is {limit} km/h"
    if unit == "s into red":
        return f"crossed the stop line {measured} s after the signal turned red"
    return f"{measured} {unit} (limit {limit})"


def _image(media: MediaStore, ref: object) -> ImageReader | None:
    if not isinstance(ref, str):
        return None
    try:
        data = media.get(ref)
        check_image(data, label=f"evidence {ref}")  # a bomb among the evidence must not stop the notices
        return ImageReader(io.BytesIO(data))
    except (SafeCityError, OSError, ValueError):
        return None
