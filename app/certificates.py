"""Drawing a gift card certificate (app.domain.certificates decides what it shows): a 6 x 3.5 inch
card at 300 dpi with the program's name, the value, the expiry, the code as a QR code (segno) and
as a Code 128 barcode (python-barcode), and the code in text, composed by Pillow and written as PNG,
JPEG or PDF (one page of the same image, in black and white, losslessly compressed)."""

from __future__ import annotations

import io
from enum import StrEnum

import barcode
import segno
from barcode.writer import ImageWriter
from PIL import Image, ImageDraw, ImageFont

from app.domain.certificates import Certificate

DPI = 300
WIDTH, HEIGHT = 1800, 1050  # 6 x 3.5 inches
MARGIN = 75
QR_SIZE = 480  # at most; the QR code is drawn at a whole number of pixels per module
BAR_HEIGHT = 150
BAR_MODULE_PIXELS = (4, 3, 2)  # the widest that fits the card
INK, PAPER = 0, 255


class Format(StrEnum):
    """A certificate's file formats (``?format=``), with their media types."""

    PNG = "png"
    JPEG = "jpeg"
    PDF = "pdf"

    @property
    def media_type(self) -> str:
        return {"png": "image/png", "jpeg": "image/jpeg", "pdf": "application/pdf"}[self.value]


def draw(certificate: Certificate, file_format: Format) -> bytes:
    """The certificate as a file of ``file_format``."""
    image = _compose(certificate)
    output = io.BytesIO()
    if file_format is Format.PDF:
        # Black and white: Pillow writes it CCITT G4 compressed, lossless, where grey would be JPEG.
        image.convert("1", dither=Image.Dither.NONE).save(output, "PDF", resolution=DPI)
    elif file_format is Format.JPEG:
        image.save(output, "JPEG", quality=90, dpi=(DPI, DPI))
    else:
        image.save(output, "PNG", dpi=(DPI, DPI), optimize=False)
    return output.getvalue()


def _compose(certificate: Certificate) -> Image.Image:
    image = Image.new("L", (WIDTH, HEIGHT), PAPER)
    pen = ImageDraw.Draw(image)
    pen.rectangle((20, 20, WIDTH - 21, HEIGHT - 21), outline=INK, width=4)
    qr = _qr(certificate.code)
    image.paste(qr, (WIDTH - MARGIN - qr.width, MARGIN))
    y, room = MARGIN, WIDTH - 3 * MARGIN - qr.width
    for text, size in _lines(certificate):
        font = ImageFont.load_default(size)
        pen.text((MARGIN, y), _fitted(text, font, room), font=font, fill=INK)
        y += int(size * 1.35)
    bars = _barcode(certificate.code)
    bar_top = HEIGHT - MARGIN - 60 - bars.height
    image.paste(bars, ((WIDTH - bars.width) // 2, bar_top))
    font = ImageFont.load_default(44)
    pen.text((WIDTH // 2, HEIGHT - MARGIN), certificate.code, font=font, fill=INK, anchor="md")
    return image


def _lines(certificate: Certificate) -> list[tuple[str, int]]:
    """The text beside the QR code, with the size of each line in pixels."""
    lines = [
        (certificate.program_name or "Gift card", 76),
        (f"{certificate.balance} {certificate.currency}", 96),
    ]
    if certificate.expires_at is not None:
        lines.append((f"Valid until {certificate.expires_at:%Y-%m-%d}", 44))
    if certificate.code_expires_on is not None:
        lines.append((f"Code valid until {certificate.code_expires_on:%Y-%m-%d}", 44))
    if len(lines) == 2:
        lines.append(("Does not expire", 44))
    return lines


def _fitted(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, room: int) -> str:
    """``text``, cut short with an ellipsis where it would be wider than ``room`` pixels."""
    while len(text) > 1 and font.getlength(text) > room:
        text = text[:-2] + "…"
    return text


def _qr(code: str) -> Image.Image:
    """The code as a QR code (error correction M, its 4-module quiet zone), as large as fits."""
    qr = segno.make_qr(code, error="m", boost_error=False)
    width, _ = qr.symbol_size(scale=1, border=4)
    output = io.BytesIO()
    qr.save(output, kind="png", scale=max(1, QR_SIZE // width), border=4)
    return Image.open(output).convert("L")


def _barcode(code: str) -> Image.Image:
    """The code as a Code 128 barcode with its quiet zones, at the widest module that fits the card."""
    symbol = barcode.Code128(code, writer=ImageWriter(mode="L", dpi=254))  # 254 dpi: 0.1 mm a pixel
    modules = len(symbol.build()[0])
    available = WIDTH - 2 * MARGIN
    pixels = next((p for p in BAR_MODULE_PIXELS if (modules + 20) * p <= available), 1)
    options = {
        "module_width": pixels / 10,
        "module_height": BAR_HEIGHT / 10,
        "quiet_zone": pixels,  # ten modules, in mm
        "write_text": False,
        "margin_top": 0,
        "margin_bottom": 0,
    }
    rendered: Image.Image = symbol.render(options)
    return rendered
