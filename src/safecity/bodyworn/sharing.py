"""Sharing an item with a prosecutor or defence counsel: an expiring link bound to its recipient.

A share is a link (`/share/<token>`) and an access code given to the recipient separately (by phone,
in person). The first browser that opens the link with the code is the only one it opens in after
that (a binding cookie), so a forwarded link is useless; five wrong codes revoke it. View-only
shares play the original with the recipient's name laid over it on the page; download shares get a
copy with the name burnt into every frame (`watermark.burn`), made once per share by a job. Every
open, play and download is in the item's custody log.

    share, token, code = create(session, item_id, ShareIn(recipient="Adv. S. Khan", mode="download",
                                reason="disclosure, FIR 112/2026"), actor="inspector.rana")
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.bodyworn import custody, watermark
from safecity.bodyworn import service as items
from safecity.bodyworn.models import BodyWornItem, BodyWornShare, ShareIn
from safecity.core.clock import as_utc, utcnow
from safecity.core.context import Context
from safecity.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from safecity.core.ids import new_id
from safecity.evidence import service as media_owners

MAX_CODE_FAILURES = 5
COPY_KIND = "bodyworn_copy"
log = logging.getLogger(__name__)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def cookie_name(share: BodyWornShare) -> str:
    """Returns the name of the cookie that binds a share to the browser that first opened it."""
    return f"sc_share_{share.id}"


def create(session: Session, item_id: str, body: ShareIn, *, actor: str) -> tuple[BodyWornShare, str, str]:
    """Makes a link for one recipient; returns the share, its token and its access code (shown once)."""
    item = items.get(session, item_id)
    if item.status != "active":
        raise Conflict(f"item {item_id} is {item.status}", hint="only kept items are shared")
    if item.do_not_disclose:
        raise Forbidden(
            f"item {item_id} is marked do not disclose", hint="a supervisor must lift the mark first"
        )
    token, code = secrets.token_urlsafe(24), f"{secrets.randbelow(10**8):08d}"
    share = BodyWornShare(
        id=new_id(),
        item_id=item.id,
        recipient=body.recipient.strip(),
        recipient_role=body.recipient_role,
        mode=body.mode,
        token_hash=_hash(token),
        code_hash=_hash(code),
        expires_at=utcnow() + timedelta(days=body.days),
        created_by=actor,
        reason=body.reason,
    )
    session.add(share)
    session.flush()
    custody.record(
        session,
        item.id,
        actor=actor,
        action="share",
        reason=body.reason,
        share=share.id,
        recipient=share.recipient,
        recipient_role=share.recipient_role,
        mode=share.mode,
        expires_at=share.expires_at,
    )
    return share, token, code


def revoke(session: Session, share_id: str, *, reason: str, actor: str) -> BodyWornShare:
    """Ends a share at once."""
    share = session.get(BodyWornShare, share_id)
    if share is None:
        raise NotFound(f"no share {share_id}")
    if share.revoked_at is not None:
        raise Conflict(f"share {share_id} was revoked already")
    share.revoked_at, share.revoked_by = utcnow(), actor
    custody.record(session, share.item_id, actor=actor, action="share_revoke", reason=reason, share=share.id)
    return share


def by_token(session: Session, token: str) -> BodyWornShare:
    """Returns the live share of a link; an unknown, expired or revoked one is NotFound (says no more)."""
    share = session.scalars(select(BodyWornShare).where(BodyWornShare.token_hash == _hash(token))).first()
    if share is None or share.revoked_at is not None or as_utc(share.expires_at) <= utcnow():
        raise NotFound("this link does not exist or has expired", hint="ask the sender for a new one")
    return share


def _who(share: BodyWornShare) -> str:
    return f"share:{share.id} ({share.recipient})"


def open_share(
    session: Session, token: str, *, code: str | None, binding: str | None
) -> tuple[BodyWornShare, str | None]:
    """Admits the recipient: the browser the link is bound to, or the first one that gives the code.

    Returns the share and, when this call bound it, the binding secret to set as a cookie.
    """
    share = by_token(session, token)
    if share.bound_to is not None:
        if binding and hmac.compare_digest(_hash(binding), share.bound_to):
            return share, None
        custody.record_refusal(
            session, share.item_id, actor=_who(share), action="share_refused", reason="another browser"
        )
        raise Forbidden(
            "this link was opened in another browser and works only there",
            hint="links are for their recipient alone; ask the sender for a new one",
        )
    if not code:
        raise InvalidInput("enter the access code you were given with the link", hint="it came separately")
    if not hmac.compare_digest(_hash(code.strip()), share.code_hash):
        _wrong_code(session, share)
        raise Forbidden("the access code is wrong", hint=f"{MAX_CODE_FAILURES} wrong codes end the link")
    secret = secrets.token_urlsafe(24)
    share.bound_to = _hash(secret)
    share.opened += 1
    custody.record(session, share.item_id, actor=_who(share), action="share_open", reason=share.reason)
    return share, secret


def _wrong_code(session: Session, share: BodyWornShare) -> None:
    """Counts a wrong code and commits it at once (the refusal that follows rolls the request back)."""
    share.failed_codes += 1
    if share.failed_codes >= MAX_CODE_FAILURES:
        share.revoked_at, share.revoked_by = utcnow(), "too many wrong codes"
    custody.record_refusal(
        session,
        share.item_id,
        actor=_who(share),
        action="share_refused",
        reason="wrong access code",
        failures=share.failed_codes,
    )


def admitted(session: Session, token: str, binding: str | None) -> tuple[BodyWornShare, BodyWornItem]:
    """Returns the share and item for a bound browser (a play or a download); refuses any other."""
    share, _ = open_share(session, token, code=None, binding=binding)
    item = items.get(session, share.item_id)
    if item.status != "active" or item.do_not_disclose:
        raise NotFound("this recording is no longer shared", hint="ask the sender")
    return share, item


def pending_copies(session: Session) -> list[str]:
    """Returns download shares still waiting for their watermarked copy."""
    return list(
        session.scalars(
            select(BodyWornShare.id).where(
                BodyWornShare.mode == "download",
                BodyWornShare.copy_ref.is_(None),
                BodyWornShare.revoked_at.is_(None),
                BodyWornShare.expires_at > utcnow(),
            )
        )
    )


def watermark_text(share: BodyWornShare) -> str:
    """Returns what is burnt into a recipient's copy."""
    made = f"{share.created_at:%Y-%m-%d}"
    return f"For {share.recipient} ({share.recipient_role}) only - share {share.id[-8:]} - {made}"


def make_copy(ctx: Context, share_id: str) -> str | None:
    """Makes a download share's watermarked copy (once); returns its ref."""
    with ctx.db.session() as session:
        share = session.get(BodyWornShare, share_id)
        if share is None or share.copy_ref is not None:
            return share.copy_ref if share else None
        item = items.get(session, share.item_id)
        source, text = ctx.media.path(item.ref), watermark_text(share)
    with tempfile.TemporaryDirectory(dir=ctx.media.incoming()) as tmp:
        target = Path(tmp) / "copy.mp4"
        frames = watermark.burn(source, target, text)
        ref = ctx.media.put_file(target, "mp4")
    digest = ref.removeprefix("sha256:").split(".")[0]
    with ctx.db.session() as session:
        share = session.get(BodyWornShare, share_id)
        assert share is not None
        share.copy_ref, share.copy_sha256 = ref, digest
        media_owners.own(session, COPY_KIND, share.id, [ref])
        custody.record(
            session,
            share.item_id,
            actor="watermark",
            action="copy",
            reason=f"watermarked copy for {share.recipient}",
            share=share.id,
            sha256=digest,
            frames=frames,
            text=text,
        )
    return ref


def make_pending_copies(ctx: Context) -> int:
    """Makes every pending watermarked copy (the job); returns how many."""
    with ctx.db.session() as session:
        pending = pending_copies(session)
    made = 0
    for share_id in pending:
        try:
            make_copy(ctx, share_id)
            made += 1
        except Exception:  # one damaged original must not stop the others' copies
            log.exception("watermarked copy of share %s failed", share_id)
    return made


def forget_expired_copies(ctx: Context) -> int:
    """Releases the copies of shares that ended (the media sweep removes them); returns how many."""
    with ctx.db.session() as session:
        ended = session.scalars(
            select(BodyWornShare.id).where(
                BodyWornShare.copy_ref.is_not(None),
                (BodyWornShare.expires_at <= utcnow()) | BodyWornShare.revoked_at.is_not(None),
            )
        ).all()
        return media_owners.forget(session, COPY_KIND, owners=list(ended)) if ended else 0
