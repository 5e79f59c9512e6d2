#!/usr/bin/env python3
"""The same inspection work in Python, as a yardstick for `huytk bench`.

Standard `email` package for MIME, Pillow with EXIF transpose and a full
decode of every photo, a difference hash, and zbar QR decoding on landscape
photos (where a card is). One core. Prints messages/s and QR codes found.

    reference_inspect.py DIR [--rounds N]
"""
import email, hashlib, io, os, re, sys, time, unicodedata
from email import policy
from PIL import Image, ImageOps
from pyzbar import pyzbar

PHRASE = re.compile(r"yeu\s*cau\s+huy\s+tai\s*khoan\D{0,40}?(\d[\d .-]{7,16}\d)")
NAME = re.compile(r"ho\s*(?:va)?\s*ten\s*:?\s*(.+)")
PHONE = re.compile(r"(?:so\s*dien\s*thoai|sdt)\s*:?\s*([+\d][\d .-]{8,16})")

def fold(s):
    s = unicodedata.normalize("NFD", s.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in s if not unicodedata.combining(c)).lower()

def dhash(img):
    small = img.convert("L").resize((9, 8))
    px = list(small.getdata())
    return sum(1 << i for i in range(64) if px[(i // 8) * 9 + i % 8] > px[(i // 8) * 9 + i % 8 + 1])

def inspect(raw):
    msg = email.message_from_bytes(raw, policy=policy.default)
    subject = fold(str(msg["subject"] or ""))
    body = msg.get_body(preferencelist=("plain", "html"))
    text = fold(body.get_content()) if body else ""
    m = PHRASE.search(subject) or PHRASE.search(text)
    number = re.sub(r"\D", "", m.group(1)) if m else None
    name = NAME.search(text)
    phone = PHONE.search(text)
    hashes, qr = [], None
    for part in msg.iter_attachments():
        data = part.get_payload(decode=True)
        hashlib.sha256(data).hexdigest()
        try:
            img = Image.open(io.BytesIO(data))
            img = ImageOps.exif_transpose(img)
            img.load()
        except Exception:
            continue
        hashes.append(dhash(img))
        if img.width > img.height and qr is None:
            codes = pyzbar.decode(img.convert("L"))
            if codes:
                qr = codes[0].data.decode("utf-8", "replace")
    return number, name, phone, hashes, qr

def main():
    d = sys.argv[1]
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 1
    msgs = [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d)) if f.endswith(".eml")]
    start = time.perf_counter()
    found = 0
    for _ in range(rounds):
        for raw in msgs:
            found += inspect(raw)[4] is not None
    secs = time.perf_counter() - start
    n = len(msgs) * rounds
    print(f"python reference: {n / secs:.1f} messages/s ({secs / n * 1000:.2f} ms/message), card QR found in {found} of {n}")

if __name__ == "__main__":
    main()
