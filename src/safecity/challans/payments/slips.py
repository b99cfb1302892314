"""What a payer quotes: the challan's PSID (1Bill slip id) and the Raast QR code that carries it."""

from __future__ import annotations

from safecity.challans.models import Challan, PaymentConfig


def psid_for(config: PaymentConfig, number: str) -> str:
    """Returns the PSID of a challan number: biller code, year, serial (9 digits) and a Luhn digit."""
    _, year, serial = number.rsplit("-", 2)
    body = f"{config.biller_code}{year}{int(serial):09d}"
    return body + _luhn(body)


# A digit's share of the Luhn sum when doubled (the doubled product's digits added up).
_DOUBLED = {str(d): (2 * d - 9 if d > 4 else 2 * d) for d in range(10)}


def _luhn(digits: str) -> str:
    """Returns the Luhn check digit of `digits` (the rightmost digit is doubled)."""
    reverse = digits[::-1]
    total = sum(_DOUBLED[c] for c in reverse[0::2]) + sum(int(c) for c in reverse[1::2])
    return str((10 - total % 10) % 10)


def _tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def _crc16(data: bytes) -> str:
    crc = 0xFFFF  # CRC-16/CCITT-FALSE, as EMV merchant QR codes end with
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def raast_qr(config: PaymentConfig, challan: Challan) -> str | None:
    """Returns the EMV merchant-presented QR payload that pays a challan by Raast, or None when no
    merchant account is configured. Static (the payer enters the amount due that day); the PSID
    travels as the bill number, so the bank's notice names the challan."""
    if not config.raast_merchant_id or not challan.psid:
        return None
    payload = "".join(
        [
            _tlv("00", "01"),  # payload format
            _tlv("01", "11"),  # static: the amount depends on the day of payment
            _tlv("26", _tlv("00", "PK.SBP.RAAST") + _tlv("01", config.raast_merchant_id)),
            _tlv("52", "9222"),  # merchant category: fines
            _tlv("53", "586"),  # Pakistani rupee
            _tlv("58", "PK"),
            _tlv("59", config.merchant_name[:25]),
            _tlv("60", config.merchant_city[:15]),
            _tlv("62", _tlv("01", challan.psid) + _tlv("05", challan.number[:25])),
        ]
    )
    payload += "6304"
    return payload + _crc16(payload.encode())
