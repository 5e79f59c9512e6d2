#!/usr/bin/env python3
"""Makes request emails with their expected inspection reports.

    gen_corpus.py tests DIR [FIRST]   the test corpus (small photos, every rule of SPEC section 3);
                                with FIRST, only the cases numbered from FIRST on
    gen_corpus.py bench DIR N   N realistic requests for the benchmark (~800 KB each)
    gen_corpus.py hostile DIR    the worst cases of issue 10 at full size (for the benchmark)
    gen_corpus.py bench-fast DIR N   the same, photos reused across messages (daemon benchmark)

Every expected report is written from what this script put into the message,
never from huytk's output. Photos are drawn: an ID card (2021 chip CCCD with
the QR on the front, or the 2024 Can cuoc card with it on the back), its
other side, and a full-body portrait, photographed at slight angles on a
table, sometimes upside down or sideways, with sensor noise.
"""
import io, json, os, random, subprocess, sys, tempfile, unicodedata
from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.mime.image import MIMEImage
from email.header import Header
from email import encoders, policy
from email.utils import formatdate, make_msgid

import qrcode
from PIL import Image, ImageDraw, ImageFilter

RNG = random.Random(20241)

# ---------------------------------------------------------------- pictures

def noise_layer(size, amount):
    n = Image.effect_noise(size, amount).convert("L")
    return n

def add_noise(img, amount=12):
    n = noise_layer(img.size, amount)
    rgb = Image.merge("RGB", (n, n, n))
    return Image.blend(img, rgb, 0.08)

def qr_image(text, module=7):
    q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=module, border=2)
    q.add_data(text.encode("utf-8"))
    q.make(fit=True)
    return q.make_image(fill_color="black", back_color="white").convert("RGB")

def card(side, qr_text, w, corner="tr", tint=(215, 208, 222)):
    """One card face, w wide (85.6 x 54 mm)."""
    h = int(w / 1.585)
    img = Image.new("RGB", (w, h), tint)
    d = ImageDraw.Draw(img)
    s = w / 800
    d.rectangle([10 * s, 10 * s, w - 10 * s, h - 10 * s], outline=(170, 40, 40) if side == "front" else (40, 40, 130), width=max(2, int(3 * s)))
    if side == "front":
        d.rectangle([22 * s, 65 * s, 120 * s, 190 * s], fill=(150, 150, 160))
        for i, ln in enumerate([290, 245, 246, 254, 324, 314, 378]):
            d.rectangle([135 * s, (70 + i * 17.5) * s, ln * s, (77 + i * 17.5) * s], fill=(50, 50, 65))
    else:
        d.rectangle([22 * s, 22 * s, 105 * s, 105 * s], fill=(120, 112, 104))
        d.rectangle([120 * s, 22 * s, 203 * s, 105 * s], fill=(120, 112, 104))
        for i in range(3):
            d.rectangle([22 * s, (188 + i * 17.5) * s, 378 * s, (197 + i * 17.5) * s], fill=(35, 35, 35))
    if qr_text:
        q = qr_image(qr_text, module=max(2, int(round(3.4 * s))))
        side_px = int(86 * s)
        q = q.resize((side_px * 2, side_px * 2), Image.NEAREST) if q.size[0] < side_px else q
        qx = {"tr": w - q.size[0] - 22 * s, "tl": 22 * s, "br": w - q.size[0] - 22 * s, "bl": 22 * s}[corner]
        qy = {"tr": 22 * s, "tl": 22 * s, "br": h - q.size[1] - 22 * s, "bl": h - q.size[1] - 22 * s}[corner]
        if side == "front" and corner in ("tl", "bl"):
            # Keep the photo box clear of the code.
            d.rectangle([22 * s, 65 * s, 120 * s, 190 * s], fill=tint)
        img.paste(q, (int(qx), int(qy)))
    return img

def photo_of(face, out_w, out_h, angle=0.0, flip=False, sideways=False, table=(120, 95, 70)):
    """The card lying on a table, photographed: slight angle, margins, noise."""
    if flip:
        face = face.rotate(180)
    if angle:
        face = face.rotate(angle, expand=True, fillcolor=table, resample=Image.BICUBIC)
    bg = Image.new("RGB", (out_w, out_h), table)
    scale = min(out_w * 0.92 / face.size[0], out_h * 0.92 / face.size[1])
    face = face.resize((int(face.size[0] * scale), int(face.size[1] * scale)), Image.BILINEAR)
    bg.paste(face, ((out_w - face.size[0]) // 2, (out_h - face.size[1]) // 2))
    img = add_noise(bg)
    if sideways:
        img = img.rotate(90, expand=True)
    return img

def portrait(w, h, skin=(214, 164, 108), shirt=(40, 70, 150), bg=(220, 175, 190)):
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    s = w / 400
    d.ellipse([163 * s, 40 * s, 237 * s, 124 * s], fill=skin)
    d.rectangle([126 * s, 126 * s, 274 * s, 350 * s], fill=shirt)
    d.rectangle([133 * s, 350 * s, 190 * s, 550 * s], fill=(50, 50, 50))
    d.rectangle([210 * s, 350 * s, 267 * s, 550 * s], fill=(50, 50, 50))
    return add_noise(img)

def encode(img, fmt, quality=88, exif_orientation=None):
    buf = io.BytesIO()
    if fmt == "jpeg":
        kw = {"quality": quality}
        if exif_orientation:
            ex = Image.Exif()
            ex[0x0112] = exif_orientation
            kw["exif"] = ex.tobytes()
        img.save(buf, "JPEG", **kw)
    elif fmt == "png":
        img.save(buf, "PNG", compress_level=6)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=80)
    elif fmt == "gif":
        img.convert("P", palette=Image.ADAPTIVE, colors=64).save(buf, "GIF")
    elif fmt == "heic":
        with tempfile.TemporaryDirectory() as t:
            src, dst = os.path.join(t, "a.png"), os.path.join(t, "a.heic")
            img.save(src)
            subprocess.run(["heif-enc", "-q", "60", "-o", dst, src], check=True, capture_output=True)
            return open(dst, "rb").read()
    return buf.getvalue()

def stored_for_orientation(img, orientation):
    """Pixels to store so that applying EXIF `orientation` shows `img` upright."""
    if orientation == 6:
        return img.rotate(90, expand=True)   # viewer rotates 90 clockwise
    if orientation == 8:
        return img.rotate(-90, expand=True)
    if orientation == 3:
        return img.rotate(180)
    return img

# ---------------------------------------------------------------- people

PEOPLE = [
    ("Nguyễn Văn An", "079203001234", "12052003", "Nam", "0912345678", "Thôn 3, Xã Hòa Bình, Huyện Yên Thành, Nghệ An"),
    ("Trần Thị Bình", "001199012345", "01021999", "Nữ", "0987654321", "Số 5 ngõ 12, Phường Láng Hạ, Đống Đa, Hà Nội"),
    ("Lê Hoàng Long", "040089012345", "23091989", "Nam", "0355111222", "Xóm 2, Xã Diễn Châu, Nghệ An"),
    ("Võ Thị Hoa", "052189000123", "05061989", "Nữ", "0905123456", "Thôn Phú Hòa, Xã Nhơn Phong, Bình Định"),
    ("Đặng Trung Dũng", "052089999999", "17111989", "Nam", "0775888999", "Phường Quang Trung, Quy Nhơn, Bình Định"),
    ("Phạm Thị Thu Hương", "031196004567", "30041996", "Nữ", "0868123456", "Số 8 Lê Lợi, Ngô Quyền, Hải Phòng"),
    ("Huỳnh Ngọc Ánh", "087301002233", "14022001", "Nữ", "0396222333", "Ấp 3, Xã Tân Thuận, Đồng Tháp"),
    ("Bùi Quốc Việt", "034078005566", "09081978", "Nam", "0818444555", "Thôn Đông, Xã Vũ Hội, Thái Bình"),
]

def qr_text(name, id_no, dob, sex, addr, issued="15082021", old=""):
    return f"{id_no}|{old}|{name}|{dob}|{sex}|{addr}|{issued}"

# ---------------------------------------------------------------- text

def cp1258(text):
    """Vietnamese in windows-1258: base letters (with â ă ê ô ơ ư đ kept
    precomposed) followed by combining tone marks."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    out = []
    for ch in unicodedata.normalize("NFC", text):
        dec = unicodedata.normalize("NFD", ch)
        base = "".join(c for c in dec if c not in tones)
        tone = "".join(c for c in dec if c in tones)
        out.append(unicodedata.normalize("NFC", base) + tone)
    return "".join(out).encode("cp1258")

def strip_marks(s):
    s = s.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))

def body_text(name, phone, number, reason="Sai thông tin cá nhân khi đăng nhập bằng tài khoản VNeID", labels="full"):
    lines = ["Kính gửi Bộ phận hỗ trợ Cổng Dịch vụ công quốc gia,", ""]
    if labels == "full":
        if name is not None: lines.append(f"+ Họ và tên: {name}")
        if phone is not None: lines.append(f"+ Số điện thoại: {phone}")
        if number is not None: lines.append(f"+ Yêu cầu hủy tài khoản {number}")
        if reason is not None: lines.append(f"+ Lý do: {reason}")
    elif labels == "short":
        if name is not None: lines.append(f"Họ tên: {name}")
        if phone is not None: lines.append(f"SĐT: {phone}")
        if number is not None: lines.append(f"Yêu cầu hủy tài khoản: {number}")
        if reason is not None: lines.append(f"Lý do hủy: {reason}")
    elif labels == "plain":
        if name is not None: lines.append(f"Ho va ten: {name}")
        if phone is not None: lines.append(f"So dien thoai: {phone}")
        if number is not None: lines.append(f"Yeu cau huy tai khoan {number}")
        if reason is not None: lines.append(f"Ly do: {reason}")
    lines += ["+ Gửi đính kèm: ảnh chụp 02 mặt CCCD và 01 ảnh chân dung toàn thân.", "", "Trân trọng."]
    return "\n".join(lines) + "\n"

# ---------------------------------------------------------------- messages

class Photo:
    def __init__(self, data, filename, ctype="image/jpeg", inline=False, role=None):
        self.data, self.filename, self.ctype, self.inline, self.role = data, filename, ctype, inline, role

def photo_set(person, small=True, corner="tr", flip=False, sideways=False, card2024=False, fmt="jpeg",
              qr_person=None, angle=None, quality=88, old=""):
    """Front, back and portrait of `person` (QR text from `qr_person`)."""
    name, id_no, dob, sex, phone, addr = person
    qp = qr_person or person
    w = 900 if small else 1600
    cw, ch = (w, int(w / 1.585))
    issued = "10082024" if card2024 else "15082021"
    text = qr_text(qp[0], qp[1], qp[2], qp[3], qp[5], issued, old)
    angle = RNG.uniform(-4, 4) if angle is None else angle
    tint = (215, 208, 222)
    front = card("front", None if card2024 else text, cw, corner, tint)
    back = card("back", text if card2024 else None, cw, corner, (216, 216, 202))
    f_img = photo_of(front, cw, ch, angle, flip=flip, sideways=sideways)
    b_img = photo_of(back, cw, ch, -angle / 2)
    p_img = portrait(int(w * 0.75), int(w * 1.125))
    ext = {"jpeg": "jpg"}.get(fmt, fmt)
    ct = f"image/{fmt}"
    return [
        Photo(encode(f_img, fmt, quality), f"mat_truoc.{ext}", ct, role="id_front"),
        Photo(encode(b_img, fmt, quality), f"mat_sau.{ext}", ct, role="id_back"),
        Photo(encode(p_img, fmt, quality), f"chan_dung.{ext}", ct, role="portrait"),
    ]

def build(subject, body=None, html=None, photos=(), files=(), sender=("Nguyễn Văn An", "an.nguyen@gmail.com"),
          headers=(), charset="utf-8", cte="base64", subject_raw=None, related=False):
    """A MIME message as bytes."""
    root = MIMEMultipart("related" if related else "mixed")
    if subject_raw is not None:
        root["Subject"] = subject_raw
    else:
        root["Subject"] = Header(subject, "utf-8").encode() if any(ord(c) > 127 for c in subject) else subject
    root["From"] = f"{Header(sender[0], 'utf-8').encode()} <{sender[1]}>" if sender[0] else sender[1]
    root["To"] = "dichvucong@chinhphu.vn"
    root["Date"] = formatdate(1721010600 + RNG.randint(0, 10**6), localtime=False)
    root["Message-ID"] = make_msgid(domain=sender[1].split("@")[1])
    for k, v in headers:
        root[k] = v
    if body is not None and html is not None:
        alt = MIMEMultipart("alternative")
        alt.attach(text_part(body, "plain", charset, cte))
        alt.attach(text_part(html, "html", charset, cte))
        root.attach(alt)
    elif body is not None:
        root.attach(text_part(body, "plain", charset, cte))
    elif html is not None:
        root.attach(text_part(html, "html", charset, cte))
    for p in photos:
        maintype, subtype = p.ctype.split("/", 1)
        part = MIMEBase(maintype, subtype)
        part.set_payload(p.data)
        encoders.encode_base64(part)
        disp = "inline" if p.inline else "attachment"
        if p.filename:
            part.add_header("Content-Disposition", disp, filename=p.filename)
        else:
            part.add_header("Content-Disposition", disp)
        if p.inline:
            part.add_header("Content-ID", f"<{RNG.randint(0, 10**9)}@mail>")
        root.attach(part)
    for name, ctype, data in files:
        maintype, subtype = ctype.split("/", 1)
        part = MIMEBase(maintype, subtype)
        part.set_payload(data)
        encoders.encode_base64(part)
        part.add_header("Content-Disposition", "attachment", filename=name)
        root.attach(part)
    return root.as_bytes(policy=policy.SMTP)

def text_part(text, sub, charset, cte):
    if charset == "windows-1258":
        part = MIMEBase("text", sub, charset="windows-1258")
        part.set_payload(cp1258(text))
        if cte == "base64":
            encoders.encode_base64(part)
        else:
            encoders.encode_quopri(part)
        return part
    part = MIMEText(text, sub, charset)
    if cte == "quoted-printable":
        from email.charset import Charset, QP
        del part["Content-Transfer-Encoding"]
        part.set_payload(text.encode(charset), charset=Charset(charset))
        cs = Charset(charset); cs.body_encoding = QP
        part.set_charset(cs)
    return part

def expect(kind="deletion_request", verdict=None, person=None, problems=(), warnings=(), absent=(), **kw):
    e = {"kind": kind}
    if kind != "deletion_request":
        e["verdict"] = "ignored"
        return e
    e["verdict"] = verdict or ("incomplete" if problems else "complete")
    if person is not None:
        e["id_number"] = person[1]
        e["id_type"] = "cccd" if len(person[1]) == 12 else "cmnd"
        e["phone"] = "+84" + person[4][1:]
        e["full_name"] = person[0]
    e.update(kw)
    e["problems"] = list(problems)
    e["warnings"] = list(warnings)
    # What must not be reported: every code this message was not built to raise.
    all_codes = ["missing_id_number", "invalid_id_number", "conflicting_id_numbers", "missing_full_name",
                 "missing_phone", "invalid_phone", "too_few_photos", "duplicate_photo", "unreadable_attachment",
                 "photo_too_small", "oversized_image", "missing_reason", "unknown_id_prefix", "qr_id_mismatch",
                 "qr_name_mismatch", "unsupported_attachment", "sender_mismatch", "blank_photo",
                 "too_many_attachments", "unread_archive"]
    e["absent"] = [c for c in all_codes if c not in problems and c not in warnings and c not in absent] + list(absent)
    e["absent"] = sorted(set(e["absent"]) - set(problems) - set(warnings))
    return e

def png_header_only(w, h):
    import struct, zlib
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")

def cases():
    """Yields (name, raw bytes, expected report)."""
    P = PEOPLE
    A, B, L, H, D, T, N, V = P
    std = lambda p, **k: photo_set(p, **k)

    def req(p, subject=None, body=None, **k):
        subject = subject if subject is not None else f"Yêu cầu hủy tài khoản + {p[1]}"
        body = body if body is not None else body_text(p[0], p[4], p[1])
        return build(subject, body, sender=(p[0], "citizen@gmail.com"), **k)

    qr_of = lambda p: {"id_number": p[1]}
    # Subjects and encodings.
    yield "basic_utf8", req(A, photos=std(A)), expect(person=A, qr=qr_of(A))
    yield "quoted_printable", req(B, photos=std(B), cte="quoted-printable"), expect(person=B, qr=qr_of(B))
    yield "windows1258_body", req(L, photos=std(L), charset="windows-1258"), expect(person=L, qr=qr_of(L))
    yield "windows1258_subject", req(H, subject_raw="=?windows-1258?B?" + __import__("base64").b64encode(cp1258(f"Yêu cầu hủy tài khoản + {H[1]}")).decode() + "?=", photos=std(H)), expect(person=H)
    nfd = lambda s: unicodedata.normalize("NFD", s)
    yield "nfd_everywhere", req(D, subject=nfd(f"Yêu cầu hủy tài khoản + {D[1]}"), body=nfd(body_text(D[0], D[4], D[1])), photos=std(D)), expect(person=D, full_name=D[0])
    yield "uppercase_subject", req(T, subject=f"YÊU CẦU HUỶ TÀI KHOẢN + {T[1]}", photos=std(T)), expect(person=T)
    yield "no_diacritics", req(N, subject=f"Yeu cau huy tai khoan {N[1]}", body=body_text(strip_marks(N[0]), N[4], N[1], "sai thong tin", labels="plain"), photos=std(N)), expect(person=(strip_marks(N[0]),) + N[1:], warnings=["qr_name_mismatch"] if False else [])
    yield "old_tone_placement", req(V, subject=f"Yêu cầu huỷ tài khoản + {V[1]}", body=body_text(V[0], V[4], V[1]).replace("hủy", "huỷ"), photos=std(V)), expect(person=V)
    yield "re_prefix", req(A, subject=f"Re: Yêu cầu hủy tài khoản + {A[1]}", photos=std(A)), expect(person=A)
    yield "fwd_tl_prefix", req(B, subject=f"Fwd: TL: Yêu cầu hủy tài khoản + {B[1]}", photos=std(B)), expect(person=B)
    yield "chuyen_tiep_prefix", req(L, subject=f"Chuyển tiếp: Yêu cầu hủy tài khoản {L[1]}", photos=std(L)), expect(person=L)
    yield "bracketed_number", req(H, subject=f"Yêu cầu hủy tài khoản [{H[1]}]", photos=std(H)), expect(person=H)
    dotted = f"{D[1][:4]}.{D[1][4:8]}.{D[1][8:]}"
    yield "dotted_number", req(D, subject=f"Yêu cầu hủy tài khoản + {dotted}", body=body_text(D[0], D[4], dotted), photos=std(D)), expect(person=D)
    spaced = f"{T[1][:3]} {T[1][3:6]} {T[1][6:9]} {T[1][9:]}"
    yield "spaced_number", req(T, subject=f"Yêu cầu hủy tài khoản + {spaced}", body=body_text(T[0], T[4], spaced), photos=std(T)), expect(person=T)
    long_subject = f"Yêu cầu hủy tài khoản + {N[1]} - {N[0]} - tài khoản cũ bị sai thông tin khi đăng nhập VNeID"
    yield "long_folded_subject", req(N, subject=long_subject, photos=std(N)), expect(person=N)
    cmnd = ("Phan Văn Tuấn", "187389815", "", "", "0868123456", "")
    yield "cmnd_nine_digits", req(cmnd, photos=std(A)), expect(person=cmnd, warnings=["qr_id_mismatch", "qr_name_mismatch"])
    a_old = ("Nguyễn Văn An", "187654321") + A[2:]
    yield "qr_old_cmnd", req(a_old, photos=photo_set(A, qr_person=A[:1] + (A[1],) + A[2:])), expect(person=a_old, warnings=["qr_id_mismatch"])
    # Body shapes.
    yield "html_only", req(V, body=None, html="<html><body><p>Kính gửi,</p><p>+ Họ và tên: <b>" + V[0] + "</b><br>+ Số điện thoại: " + V[4] + "<br>+ Yêu cầu hủy tài khoản " + V[1] + "<br>+ Lý do: trùng tài khoản</p></body></html>", photos=std(V)), expect(person=V)
    yield "alternative_parts", req(A, html="<p>+ Họ và tên: Người Khác</p>", photos=std(A)), expect(person=A)
    quoted = body_text(B[0], B[4], B[1]) + "\nVào Th 2, 15 thg 7, 2024 lúc 09:30 Hỗ trợ DVC <dichvucong@chinhphu.vn> đã viết:\n> + Họ và tên: Nguyễn Văn Cũ\n> + Số điện thoại: 0911111111\n"
    yield "quoted_history_ignored", req(B, subject=f"Re: Yêu cầu hủy tài khoản + {B[1]}", body=quoted, photos=std(B)), expect(person=B)
    only_quoted = "Em gửi lại ạ.\n\nOn Mon, Jul 15, 2024 at 9:30 AM Trần Thị Bình <binh@gmail.com> wrote:\n> + Họ và tên: Trần Thị Bình\n> + Số điện thoại: 0987654321\n> + Lý do: sai\n"
    yield "fields_only_in_quote", req(B, body=only_quoted, photos=std(B)), expect(person=None, problems=["missing_full_name", "missing_phone"], warnings=["missing_reason"], id_number=B[1])
    yield "from_relative_address", build(f"Yêu cầu hủy tài khoản + {L[1]}", body_text(L[0], L[4], L[1]), photos=std(L), sender=("Lê Văn Bố", "bo.le@yahoo.com")), expect(person=L)
    yield "short_labels_one_line", req(H, body=f"Họ tên: {H[0]}, SĐT: {H[4]}, Lý do: trùng tài khoản\nYêu cầu hủy tài khoản: {H[1]}\n", photos=std(H)), expect(person=H)
    yield "phone_plus84", req(D, body=body_text(D[0], "+84 " + D[4][1:4] + " " + D[4][4:7] + " " + D[4][7:], D[1]), photos=std(D)), expect(person=D)
    yield "phone_0084_dotted", req(T, body=body_text(T[0], "0084." + T[4][1:], T[1]), photos=std(T)), expect(person=T)
    yield "body_line_only", req(N, subject="Hỗ trợ giúp tôi", photos=std(N)), expect(person=N)
    # Problems.
    yield "missing_number", req(A, subject="Yêu cầu hủy tài khoản", body=body_text(A[0], A[4], None), photos=std(A)), expect(problems=["missing_id_number"], id_number=None, full_name=A[0])
    yield "invalid_number_11_digits", req(A, subject="Yêu cầu hủy tài khoản + 07920300123", body=body_text(A[0], A[4], "07920300123"), photos=std(A)), expect(problems=["invalid_id_number"], warnings=["qr_id_mismatch"])
    yield "future_birth_year", req(A, subject="Yêu cầu hủy tài khoản + 079235001234", body=body_text(A[0], A[4], "079235001234"), photos=std(A)), expect(problems=["invalid_id_number"], warnings=["qr_id_mismatch"])
    yield "conflicting_numbers", req(A, body=body_text(A[0], A[4], "079203001299"), photos=std(A)), expect(problems=["conflicting_id_numbers"], id_number=A[1])
    yield "missing_name", req(B, body=body_text(None, B[4], B[1]), photos=std(B)), expect(problems=["missing_full_name"], full_name=None)
    yield "missing_phone", req(L, body=body_text(L[0], None, L[1]), photos=std(L)), expect(problems=["missing_phone"], phone=None)
    yield "invalid_phone_landline", req(H, body=body_text(H[0], "024 3823 4567", H[1]), photos=std(H)), expect(problems=["invalid_phone"], phone=None)
    yield "invalid_phone_old_prefix", req(H, body=body_text(H[0], "01669 123 456", H[1]), photos=std(H)), expect(problems=["invalid_phone"], phone=None)
    yield "two_photos", req(D, photos=std(D)[:2]), expect(problems=["too_few_photos"], id_number=D[1])
    s = std(T)
    yield "duplicate_identical", req(T, photos=[s[0], Photo(s[0].data, "anh2.jpg"), s[2]]), expect(problems=["duplicate_photo", "too_few_photos"])
    front = Image.open(io.BytesIO(s[0].data))
    re_enc = encode(front.resize((front.size[0] * 3 // 4, front.size[1] * 3 // 4)), "jpeg", 70)
    yield "duplicate_reencoded_resized", req(T, photos=[s[0], s[1], s[2], Photo(re_enc, "IMG_0002.jpg")]), expect(problems=["duplicate_photo"], photos={"usable": 4, "distinct": 3})
    s = std(N)
    yield "truncated_jpeg", req(N, photos=[s[0], Photo(s[1].data[: len(s[1].data) * 2 // 3], "mat_sau.jpg"), s[2]]), expect(problems=["unreadable_attachment", "too_few_photos"])
    png = encode(Image.open(io.BytesIO(s[1].data)), "png")
    yield "truncated_png", req(N, photos=[s[0], Photo(png[: len(png) // 2], "mat_sau.png", "image/png"), s[2]]), expect(problems=["unreadable_attachment", "too_few_photos"])
    yield "garbage_named_jpg", req(N, photos=s + [Photo(b"this is not a picture at all" * 20, "anh4.jpg")]), expect(problems=["unreadable_attachment"])
    tiny = encode(portrait(200, 300), "jpeg")
    yield "photo_too_small", req(V, photos=std(V)[:2] + [Photo(tiny, "chan_dung.jpg")]), expect(problems=["photo_too_small", "too_few_photos"])
    yield "oversized_png_header", req(V, photos=std(V) + [Photo(png_header_only(30000, 30000), "big.png", "image/png")]), expect(problems=["oversized_image"])
    # Warnings.
    yield "missing_reason", req(A, body=body_text(A[0], A[4], A[1], reason=None), photos=std(A)), expect(person=A, warnings=["missing_reason"])
    unk = ("Nguyễn Văn An", "003203001234") + A[2:]
    yield "unknown_prefix", req(unk, photos=photo_set(unk)), expect(person=unk, warnings=["unknown_id_prefix"])
    other = P[1]
    yield "qr_other_person", req(A, photos=photo_set(A, qr_person=other)), expect(person=A, warnings=["qr_id_mismatch", "qr_name_mismatch"])
    yield "qr_name_differs", req(A, photos=photo_set(A, qr_person=("Nguyễn Văn Ân Khác",) + A[1:])), expect(person=A, warnings=["qr_name_mismatch"])
    yield "pdf_and_docx_ignored", req(B, photos=std(B), files=[("don.pdf", "application/pdf", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\n%%EOF"), ("don.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK\x03\x04" + b"\0" * 40)]), expect(person=B, warnings=["unsupported_attachment"])
    # Attachment types and placement.
    yield "png_photos", req(L, photos=std(L, fmt="png")), expect(person=L, qr=qr_of(L))
    yield "webp_photos", req(H, photos=std(H, fmt="webp")), expect(person=H)
    yield "gif_photos", req(D, photos=std(D, fmt="gif")), expect(person=D)
    yield "heic_photos", req(T, photos=std(T, fmt="heic")), expect(person=T, qr=qr_of(T))
    s = std(N)
    mixed = [Photo(s[0].data, "scan.dat", "application/octet-stream"), Photo(s[1].data, "IMG_1234.PNG", "image/png"), Photo(s[2].data, None, "image/jpeg")]
    yield "wrong_declared_types", req(N, photos=mixed), expect(person=N)
    s = std(V)
    yield "inline_images", req(V, photos=[Photo(p.data, p.filename, p.ctype, inline=True) for p in s], related=True), expect(person=V)
    # EXIF orientation: stored sideways, upright once applied.
    f = Image.open(io.BytesIO(std(A)[0].data))
    stored = stored_for_orientation(f, 6)
    exif_front = encode(stored, "jpeg", exif_orientation=6)
    s = std(A)
    yield "exif_rotated", req(A, photos=[Photo(exif_front, "IMG_0001.JPG"), s[1], s[2]]), expect(person=A, qr=qr_of(A), attachments_0={"width": f.size[0], "height": f.size[1]})
    # QR anywhere.
    for corner in ("tl", "bl", "br"):
        yield f"qr_corner_{corner}", req(B, photos=photo_set(B, corner=corner)), expect(person=B, qr=qr_of(B))
    yield "card_upside_down", req(L, photos=photo_set(L, flip=True)), expect(person=L, qr=qr_of(L))
    yield "card_sideways", req(H, photos=photo_set(H, sideways=True)), expect(person=H, qr=qr_of(H))
    # Roles from content alone: neutral names; the QR's issue date (after
    # 1 July 2024) says it is the back of a Can cuoc card.
    s = photo_set(D, card2024=True)
    neutral = [Photo(p.data, f"IMG_{i}.jpg") for i, p in enumerate(s)]
    yield "card_2024_qr_on_back", req(D, photos=neutral), expect(person=D, qr=qr_of(D), roles=["id_front", "id_back", "portrait"])
    s = photo_set(A)
    neutral = [Photo(p.data, f"{i}.jpg") for i, p in enumerate([s[2], s[1], s[0]])]
    yield "roles_from_content", req(A, photos=neutral), expect(person=A, roles=["portrait", "id_back", "id_front"])
    # Not requests.
    yield "auto_reply_header", build(f"Automatic reply: Yêu cầu hủy tài khoản + {A[1]}", "Tôi đang nghỉ phép.", headers=[("Auto-Submitted", "auto-replied")]), expect("auto_reply")
    yield "auto_reply_x_autoreply", build(f"Re: Yêu cầu hủy tài khoản + {A[1]}", body_text(A[0], A[4], A[1]), headers=[("X-Autoreply", "yes")]), expect("auto_reply")
    yield "auto_reply_precedence", build(f"Yêu cầu hủy tài khoản + {A[1]}", "Cảm ơn bạn đã liên hệ.", headers=[("Precedence", "bulk")]), expect("auto_reply")
    yield "auto_submitted_no_is_request", req(A, photos=std(A), headers=[("Auto-Submitted", "no")]), expect(person=A)
    dsn = ("--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
           "Reporting-MTA: dns; mx.vn\r\n\r\nFinal-Recipient: rfc822; x@y.vn\r\nAction: failed\r\nStatus: 5.1.1\r\n--B--\r\n")
    yield "bounce_report_with_request_subject", (
        "From: Mail Delivery System <MAILER-DAEMON@mx.vn>\r\nTo: dichvucong@chinhphu.vn\r\n"
        f"Subject: Undelivered: Yêu cầu hủy tài khoản + {A[1]}\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <b1@mx.vn>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n" + dsn).encode("utf-8"), expect("bounce")
    yield "bounce_postmaster_null_path", (
        "Return-Path: <>\r\nFrom: postmaster@mx.vn\r\nTo: dichvucong@chinhphu.vn\r\nSubject: Delivery failure\r\n"
        "Message-ID: <b2@mx.vn>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYêu cầu hủy tài khoản 079203001234 could not be delivered.\r\n").encode("utf-8"), expect("bounce")
    yield "other_mentions_deleting", build("Hỏi về tài khoản", "Tôi muốn xóa tài khoản cũ thì làm thế nào? Hủy tài khoản có mất dữ liệu không?"), expect("other")
    yield "other_passport", build("Hỏi về thủ tục cấp hộ chiếu", "Cho tôi hỏi thủ tục cấp hộ chiếu trực tuyến."), expect("other")
    # Cards photographed at a slant (the QR's edges run diagonally).
    for angle in (30, 45):
        yield f"card_tilted_{angle}", req(T, photos=photo_set(T, angle=angle)), expect(person=T, qr=qr_of(T))
    # Issue 10: hostile and unusual mail.
    yield from hostile_cases(req, std)

def followups():
    """Yields (name, [raw messages in order], expected combined report)."""
    A, B, L, H, D, T, N, V = PEOPLE
    s = photo_set(D)
    first = build(f"Yêu cầu hủy tài khoản + {D[1]}", body_text(D[0], D[4], D[1]), photos=s[:2], sender=(D[0], "dung.dang@gmail.com"))
    later = build(f"Re: Yêu cầu hủy tài khoản + {D[1]}", "Em gửi bổ sung ảnh chân dung ạ.\n", photos=s[2:], sender=(D[0], "dung.dang@gmail.com"))
    yield "photos_add_up", [first, later], expect(person=D, photos={"usable": 3, "distinct": 3})
    other = build(f"Re: Yêu cầu hủy tài khoản + {D[1]}", "Ảnh của bố tôi.\n", photos=s[2:], sender=("Đặng Văn Con", "con.dang@yahoo.com"))
    yield "sender_mismatch", [first, other], expect(person=D, warnings=["sender_mismatch"])
    fix = build(f"Re: Yêu cầu hủy tài khoản + {D[1]}", f"Số điện thoại đúng: 0911222333\n", sender=(D[0], "dung.dang@gmail.com"))
    yield "later_phone_wins", [first, later, fix], expect(person=D[:4] + ("0911222333",) + D[5:])

def write_tests(out, first=1):
    """Writes the corpus; with `first`, only the cases numbered from it
    (the pictures are drawn with fresh noise each run, so older cases are
    left as they are)."""
    os.makedirs(out, exist_ok=True)
    n = 0
    for name, raw, exp in cases():
        n += 1
        if n < first:
            continue
        base = os.path.join(out, f"{n:02d}_{name}")
        open(base + ".eml", "wb").write(raw)
        json.dump(exp, open(base + ".expected.json", "w"), ensure_ascii=False, indent=1)
    print(f"{n} messages in {out}")
    if first > 1:
        return
    fdir = os.path.join(out, "followups")
    os.makedirs(fdir, exist_ok=True)
    for name, raws, exp in followups():
        for i, raw in enumerate(raws):
            open(os.path.join(fdir, f"{name}.{i + 1}.eml"), "wb").write(raw)
        json.dump(exp, open(os.path.join(fdir, f"{name}.expected.json"), "w"), ensure_ascii=False, indent=1)

def write_bench(out, count):
    os.makedirs(out, exist_ok=True)
    corners = ["tr", "tl", "br", "bl"]
    for i in range(count):
        p = PEOPLE[i % len(PEOPLE)]
        k = i % 10
        photos = photo_set(p, small=False, corner=corners[i % 4], flip=(k == 3), sideways=(k == 7),
                           card2024=(k in (5, 8)), quality=93)
        raw = build(f"Yêu cầu hủy tài khoản + {p[1]}", body_text(p[0], p[4], p[1]), photos=photos,
                    sender=(p[0], f"citizen{i}@gmail.com"))
        open(os.path.join(out, f"req_{i:04d}.eml"), "wb").write(raw)
    print(f"{count} messages in {out}")

def write_bench_fast(out, count, sets=20):
    """`count` requests with distinct numbers and names, reusing `sets` photo
    sets (the daemon benchmark measures ingest, not drawing)."""
    os.makedirs(out, exist_ok=True)
    corners = ["tr", "tl", "br", "bl"]
    photo_sets = [photo_set(PEOPLE[k % len(PEOPLE)], small=False, corner=corners[k % 4], quality=93) for k in range(sets)]
    for i in range(count):
        p = PEOPLE[i % len(PEOPLE)]
        number = p[1][:6] + f"{i:06d}"
        person = (p[0] + f" {i}", number) + p[2:]
        raw = build(f"Yêu cầu hủy tài khoản + {number}", body_text(person[0], p[4], number),
                    photos=photo_sets[i % sets], sender=(person[0], f"citizen{i}@test"))
        open(os.path.join(out, f"req_{i:05d}.eml"), "wb").write(raw)
    print(f"{count} messages in {out}")

def write_console(out):
    """Messages for the console tests: a CCCD request whose card QR carries
    the holder's old CMND (the console shows the CMND account beside the
    CCCD one), and a hostile request whose every field carries markup."""
    os.makedirs(out, exist_ok=True)
    p = PEOPLE[0]
    raw = build(f"Yêu cầu hủy tài khoản + {p[1]}", body_text(p[0], p[4], p[1]),
                photos=photo_set(p, old="025123456"), sender=(p[0], "an@test"))
    open(os.path.join(out, "cccd_with_old_cmnd.eml"), "wb").write(raw)
    h = PEOPLE[1]
    script_name = h[0] + ' <script>window.__pwned="name"</script><img src=x onerror="window.__pwned=\'img\'">'
    body = body_text(script_name, h[4], h[1], reason='</pre><script>window.__pwned="reason"</script><style>body{display:none}</style>') \
        + '\n<iframe src="javascript:window.top.__pwned=\'iframe\'"></iframe>\n<a href="javascript:window.__pwned=1">bấm</a>\n'
    photos = photo_set(h)
    photos[0].filename = 'mat_truoc"><svg onload="window.__pwned=\'file\'">.jpg'
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="900" height="600"><script>window.__pwned="svg"</script><rect width="900" height="600"/></svg>'
    page = b'<html><body><script>window.__pwned="html"</script>trang</body></html>'
    photos.append(Photo(svg, "anh_the.jpg", "image/jpeg"))
    photos.append(Photo(page, "anh_chan_dung.png", "image/png"))
    raw = build(f'Yêu cầu hủy tài khoản + {h[1]} <script>window.__pwned="subject"</script><b style="color:red">', body,
                photos=photos, sender=(h[0], "hostile@test"))
    open(os.path.join(out, "hostile.eml"), "wb").write(raw)
    print(f"console messages in {out}")

# ---------------------------------------------------------------- hostile mail (issue 10)
#
# Messages built to cost the desk as much as they can: the expected report of
# each says what a citizen's mail of that shape must give, written from what
# is put in here, never from huytk's output.

def png_chunk(t, d):
    import struct, zlib
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)

def png16_rgba(w, h, flat_rows=False):
    """A w x h 16-bit RGBA PNG (8 bytes a pixel decoded) that compresses to
    little: a horizontal and a vertical ramp, every row after the first
    stored with the Up filter as small steps."""
    import struct, zlib
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0)
    comp = zlib.compressobj(9)
    out = [b"\x89PNG\r\n\x1a\n", png_chunk(b"IHDR", ihdr)]
    first = bytearray([0])
    for x in range(w):
        v = (x * 65535 // max(1, w - 1))
        first += struct.pack(">HHHH", v, 65535 - v, (v * 3) & 0xFFFF, 65535)
    data = [comp.compress(bytes(first))]
    # Up filter: each row adds a constant step to the row above (wrapping).
    step = bytes(bytearray([2]) + bytes([0, 9, 0, 9, 0, 9, 0, 0]) * w)
    same = bytes(1 + 8 * w)  # Up filter, no change: the row above again
    same = bytes([2]) + same[1:]
    for y in range(1, h):
        data.append(comp.compress(same if flat_rows and y % 500 else step))
    data.append(comp.flush())
    idat = b"".join(data)
    for i in range(0, len(idat), 1 << 20):
        out.append(png_chunk(b"IDAT", idat[i:i + (1 << 20)]))
    out.append(png_chunk(b"IEND", b""))
    return b"".join(out)

def tiny_png(seed):
    img = Image.new("L", (8, 8), seed % 256)
    return encode(img, "png")

def big_smooth(w, h):
    """A w x h picture with structure everywhere and little detail (cheap to
    compress): ramps and a few blocks."""
    small = Image.new("RGB", (64, 64))
    d = ImageDraw.Draw(small)
    for i in range(64):
        d.line([(i, 0), (i, 63)], fill=(i * 4, 255 - i * 4, (i * 7) % 256))
    d.rectangle([10, 10, 30, 50], fill=(20, 20, 20))
    d.rectangle([40, 5, 60, 25], fill=(240, 240, 240))
    return small.resize((w, h), Image.BILINEAR)

def nesting_bomb(levels):
    """`levels` message/rfc822 parts each inside the one before."""
    head = "From: a@b.vn\r\nSubject: Yêu cầu hủy tài khoản 079203001234\r\nContent-Type: message/rfc822\r\n\r\n"
    inner = "From: a@b.vn\r\nSubject: x\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return (head.encode() * levels) + inner.encode()

def many_parts(n, first_photos=()):
    parts = list(first_photos) + [Photo(tiny_png(i), f"anh_{i}.png", "image/png") for i in range(n)]
    A = PEOPLE[0]
    return build(f"Yêu cầu hủy tài khoản + {A[1]}", body_text(A[0], A[4], A[1]), photos=parts,
                 sender=(A[0], "citizen@gmail.com"))

def long_line(size):
    A = PEOPLE[0]
    body = body_text(A[0], A[4], A[1]) + "+ Lý do: " + ("trùng tài khoản " * (size // 16)) + "\n"
    return build(f"Yêu cầu hủy tài khoản + {A[1]}", body, sender=(A[0], "citizen@gmail.com"), cte="8bit") \
        if False else build(f"Yêu cầu hủy tài khoản + {A[1]}", body, sender=(A[0], "citizen@gmail.com"))

def tnef_stream(files):
    """An Outlook winmail.dat holding `files` [(long name, bytes)]: each
    attachment as attAttachRendData, attAttachTitle (8.3 name),
    attAttachData and attAttachment (MAPI properties: the long name as
    PT_UNICODE PR_ATTACH_LONG_FILENAME, the MIME type as PT_STRING8
    PR_ATTACH_MIME_TAG), each record with its checksum (MS-OXTNEF)."""
    import struct
    def record(level, attr_id, data):
        return struct.pack("<BII", level, attr_id, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)
    def prop(ptype, pid, value):
        return struct.pack("<HHI", ptype, pid, 1) + struct.pack("<I", len(value)) + value + b"\0" * (-len(value) % 4)
    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += record(1, 0x00089006, b"\0\0\1\0")                      # attTnefVersion
    out += record(1, 0x00078008, b"IPM.Microsoft Mail.Note\0")    # attMessageClass
    for name, data, mime in files:
        base, _, ext = name.rpartition(".")
        short = strip_marks(base)[:8].upper().replace(" ", "_") + "." + ext[:3].upper()
        out += record(2, 0x00069002, struct.pack("<HIIHH", 1, 0xFFFFFFFF, 0, 0, 0))  # attAttachRendData
        out += record(2, 0x00018010, short.encode("ascii") + b"\0")                  # attAttachTitle
        out += record(2, 0x0006800F, data)                                           # attAttachData
        props = struct.pack("<I", 2)
        props += prop(0x001F, 0x3707, (name + "\0").encode("utf-16-le"))             # PR_ATTACH_LONG_FILENAME
        props += prop(0x001E, 0x370E, (mime + "\0").encode("ascii"))                 # PR_ATTACH_MIME_TAG
        out += record(2, 0x00069005, props)                                          # attAttachment
    return out

def zip_of(files, compress=True):
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in files:
            z.writestr(name, data)
    return buf.getvalue()

def viscii(text):
    return subprocess.run(["iconv", "-f", "UTF-8", "-t", "VISCII"], input=text.encode(), capture_output=True, check=True).stdout

def mime_raw(headers, body):
    return ("\r\n".join(f"{k}: {v}" for k, v in headers) + "\r\n\r\n").encode() + body

def b64_lines(data):
    import base64
    s = base64.b64encode(data).decode()
    return "\r\n".join(s[i:i + 76] for i in range(0, len(s), 76))

def image_part(data, filename, ctype="image/jpeg", disposition="inline", cid=False):
    h = [f"Content-Type: {ctype}; name=\"{filename}\"", "Content-Transfer-Encoding: base64"]
    if disposition:
        h.append(f"Content-Disposition: {disposition}; filename=\"{filename}\"")
    if cid:
        h.append(f"Content-ID: <{RNG.randint(0, 10**9)}@apple>")
    return "\r\n".join(h) + "\r\n\r\n" + b64_lines(data) + "\r\n"

def multipart(sub, boundary, parts, headers=()):
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head + f"Content-Type: multipart/{sub}; boundary=\"{boundary}\"\r\n\r\n" + "".join(f"--{boundary}\r\n{p}" for p in parts) + f"--{boundary}--\r\n"

def text_plain(text):
    import base64
    return "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64_lines(text.encode()) + "\r\n"

def envelope(person, subject=None, extra=()):
    import base64
    subject = subject or f"Yêu cầu hủy tài khoản + {person[1]}"
    enc = "=?utf-8?b?" + base64.b64encode(subject.encode()).decode() + "?="
    return "".join(f"{k}: {v}\r\n" for k, v in [("From", "citizen@icloud.com"), ("To", "dichvucong@chinhphu.vn"), ("Subject", enc),
            ("Date", formatdate(1721010600, localtime=False)), ("Message-ID", make_msgid(domain="icloud.com")), ("MIME-Version", "1.0")] + list(extra))

def bounce_cases(A, original):
    """Non-delivery reports that quote our subject and the request itself
    (photos included), in the shapes Exchange, Domino and an MMS gateway
    send."""
    subj = f"Yêu cầu hủy tài khoản + {A[1]}"
    import base64
    enc = lambda s: "=?utf-8?b?" + base64.b64encode(s.encode()).decode() + "?="
    # Exchange / Microsoft 365: multipart/report with an embedded report.
    exchange = ("From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@chinhphu.vn>\r\n"
                "To: citizen@gmail.com\r\n" f"Subject: {enc('Undeliverable: ' + subj)}\r\n"
                "Message-ID: <ndr1@chinhphu.vn>\r\nX-MS-Exchange-Message-Is-Ndr: \r\nX-MS-Embedded-Report: \r\nAuto-Submitted: auto-replied\r\n"
                "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"NDR\"\r\n\r\n"
                "--NDR\r\n" + text_plain("Không thể gửi thư đến những người nhận hoặc nhóm sau:\n" + body_text(A[0], A[4], A[1])) +
                "--NDR\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;mx.chinhphu.vn\r\n\r\nFinal-Recipient: rfc822;x@y.vn\r\nAction: failed\r\nStatus: 5.1.10\r\n\r\n"
                "--NDR\r\nContent-Type: message/rfc822\r\n\r\n").encode() + original + b"\r\n--NDR--\r\n"
    yield "bounce_exchange_ndr", exchange, expect("bounce")
    # HCL/Lotus Domino: a plain message from the Mail Router quoting the original.
    domino = ("From: Mail Router <Postmaster@domino.vn>\r\nTo: citizen@gmail.com\r\n"
              f"Subject: {enc('DELIVERY FAILURE: User dichvucong not listed in Domino Directory')}\r\n"
              "Message-ID: <ndr2@domino.vn>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"DOM\"\r\n\r\n"
              "--DOM\r\n" + text_plain(f"Your message\n\n  Subject: {subj}\n\nwas not delivered to:\n\n  dichvucong@domino.vn\n\nbecause:\n\n  User dichvucong (dichvucong@domino.vn) not listed in Domino Directory\n\n" + body_text(A[0], A[4], A[1])) +
              "--DOM\r\nContent-Type: message/rfc822\r\n\r\n").encode() + original + b"\r\n--DOM--\r\n"
    yield "bounce_domino", domino, expect("bounce")
    # A carrier's MMS gateway: Postfix's report from MAILER-DAEMON, the
    # original's headers only.
    mms = ("Return-Path: <>\r\nFrom: MAILER-DAEMON@mms.mobifone.vn (Mail Delivery System)\r\nTo: citizen@gmail.com\r\n"
           "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <ndr3@mms.mobifone.vn>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"MMS\"\r\n\r\n--MMS\r\n" +
           text_plain(f"This is the mail system at host mms.mobifone.vn.\n\nI'm sorry to have to inform you that your message could not be delivered.\n\n<0912345678@mms.mobifone.vn>: MMS delivery failed\n\nSubject: {subj}\n") +
           "--MMS\r\nContent-Type: text/rfc822-headers\r\n\r\n" f"From: citizen@gmail.com\r\nSubject: {enc(subj)}\r\n\r\n--MMS--\r\n").encode()
    yield "bounce_mms_gateway", mms, expect("bounce")
    # An MMS gateway (Apache James) answering "Re:<subject>" from a spelled-out
    # postmaster, with the request quoted in its text.
    james = ("Return-Path: <post_master@vtext.viettel.vn>\r\nFrom: post_master@vtext.viettel.vn\r\nTo: citizen@gmail.com\r\n"
             f"Subject: {enc('Re:' + subj)}\r\nMessage-ID: <ndr4@vtext.viettel.vn>\r\nMIME-Version: 1.0\r\n"
             "Content-Type: multipart/mixed; boundary=\"J\"\r\n\r\n--J\r\n" +
             text_plain("Error: Invalid user address\n\nError message below:\n550 - Requested action not taken: no such user here\n\nMessage details:\n" + body_text(A[0], A[4], A[1])) +
             "--J--\r\n").encode()
    yield "bounce_gateway_post_master", james, expect("bounce")
    # A carrier's no-reply "mail error" notice in its own language, the
    # returned mail attached whole.
    carrier = ("Return-Path: <>\r\nFrom: no-reply@mail.vnpt.vn\r\nTo: citizen@gmail.com\r\n"
               f"Subject: {enc('Thông báo lỗi thư')}\r\nMessage-ID: <ndr5@mail.vnpt.vn>\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/mixed; boundary=\"C\"\r\n\r\n--C\r\n" +
               text_plain("Hộp thư người nhận đã đầy, thư không gửi được.") +
               "--C\r\nContent-Type: message/rfc822\r\n\r\n").encode() + original + b"\r\n--C--\r\n"
    yield "bounce_carrier_no_reply", carrier, expect("bounce")
    # A list manager's notice (fml, Mailman): "you are not a member",
    # quoting the post, from the list's admin address, no Precedence.
    fml = ("Return-Path: <hotro-admin@lists.chinhphu.vn>\r\nFrom: hotro-admin@lists.chinhphu.vn\r\nTo: citizen@gmail.com\r\n"
           f"Subject: {enc('You citizen@gmail.com are not member (hotro ML)')}\r\nMessage-ID: <ml1@lists.chinhphu.vn>\r\n"
           "X-MLServer: fml [fml 4.0.3 release]\r\nList-Subscribe: <mailto:hotro-ctl@lists.chinhphu.vn?body=subscribe>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           "You are not a member of this mailing list.\r\n\r\nOriginal mail as follows:\r\n\r\n" + body_text(A[0], A[4], A[1]).replace("\n", "\r\n")).encode()
    yield "list_manager_notice", fml, expect("auto_reply")
    # Amazon SES's delivery notice over SNS, a JSON text quoting our subject.
    ses = ("Return-Path: <0101@us-west-2.amazonses.com>\r\nFrom: AWS Notifications <no-reply@sns.amazonaws.com>\r\nTo: desk@chinhphu.vn\r\n"
           "Subject: AWS Notification Message\r\nMessage-ID: <sns1@amazonses.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
           + json.dumps({"notificationType": "Delivery", "mail": {"commonHeaders": {"subject": subj}}, "delivery": {"recipients": ["citizen@gmail.com"]}}, ensure_ascii=False)
           + "\r\n").encode()
    yield "bounce_ses_delivery_notice", ses, expect("bounce")
    # A mailbox provider's abuse complaint: the reported mail attached, no
    # report part, a fixed subject.
    jmrp = ("Return-Path: <staff@outlook.vn>\r\nFrom: staff@outlook.vn\r\nTo: abuse@chinhphu.vn\r\nSubject: complaint about message from 203.0.113.9\r\n"
            "Message-ID: <jmrp1@outlook.vn>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"R\"\r\n\r\n"
            "--R\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n").encode() + original + b"\r\n--R--\r\n"
    yield "bounce_abuse_complaint", jmrp, expect("bounce")

def hostile_cases(req, std):
    """The classes of issue 10, each as a small message and what it must give."""
    P = PEOPLE
    A, B, L, H, D, T, N, V = P
    qr_of = lambda p: {"id_number": p[1]}
    # Blank pictures (case 72, formerly written by hand): one blank white PNG.
    yield "blank_photo", req(A, photos=[Photo(encode(Image.new("RGB", (900, 600), (255, 255, 255)), "png"), "mat_truoc.png", "image/png")]), \
        expect(person=A, problems=["blank_photo", "too_few_photos"], attachments_0={"usable": False, "format": "png", "problems": ["blank_photo"]})
    # A nesting bomb: 2,000 message/rfc822 levels (35,000 in `hostile`).
    yield "nesting_bomb", nesting_bomb(2000), {"error": "nested deeper than"}
    # More MIME parts than accepted.
    many = "".join("--P\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(4100))
    yield "too_many_parts", (envelope(A) + "Content-Type: multipart/mixed; boundary=\"P\"\r\n\r\n" + many + "--P--\r\n").encode(), {"error": "more than 4000 MIME parts"}
    # One labelled line of 400 KB (a pasted wall of text as the reason).
    long_reason = "trùng tài khoản, " * 24000
    yield "long_labelled_line", req(B, body=body_text(B[0], B[4], B[1], reason=long_reason), photos=std(B)), expect(person=B)
    # A 49-megapixel 16-bit RGBA PNG beside two photos: decoded to grey, usable.
    s = std(L)
    yield "png16_rgba_49mp", req(L, photos=s[:2] + [Photo(png16_rgba(7000, 7000, flat_rows=True), "chan_dung.png", "image/png")]), \
        expect(person=L, photos={"usable": 3, "distinct": 3})
    # Many tiny pictures after the three photos: the first ones are
    # decoded (too small), those past the limit listed, not decoded.
    s = std(H)
    tiny = [Photo(tiny_png(i), f"anh_{i}.png", "image/png") for i in range(40)]
    yield "many_tiny_parts", req(H, photos=s + tiny), expect(person=H, problems=["photo_too_small"], warnings=["too_many_attachments"], photos={"usable": 3, "distinct": 3})
    # iPhone Mail: images inline, no Content-ID, text parts between them.
    s = std(D)
    ios = envelope(D) + multipart("mixed", "Apple-Mail-1", [text_plain(body_text(D[0], D[4], D[1]))] +
        [image_part(p.data, f"IMG_{100 + i}.jpeg") + "--Apple-Mail-1\r\n" + text_plain("\n") for i, p in enumerate(s[:2])][:2] + [image_part(s[2].data, "IMG_102.jpeg")])
    yield "iphone_inline_no_cid", ios.encode(), expect(person=D, photos={"usable": 3, "distinct": 3})
    # Apple Mail rich text: alternative{plain, mixed{html, img, html, img, html, img}}.
    s = std(T)
    html = lambda t: "Content-Type: text/html; charset=utf-8\r\n\r\n" + t + "\r\n"
    inner = multipart("mixed", "Apple-Mail-3", [html("<html><body>" + body_text(T[0], T[4], T[1]).replace("\n", "<br>") + "</body></html>")] +
        sum([[image_part(p.data, f"IMG_{i}.jpeg", cid=True), html("<br>")] for i, p in enumerate(s)], []))
    apple = envelope(T) + multipart("alternative", "Apple-Mail-2", [text_plain(body_text(T[0], T[4], T[1])), inner])
    yield "apple_mail_rich_text", apple.encode(), expect(person=T, photos={"usable": 3, "distinct": 3})
    # Outlook's winmail.dat holding the three photos.
    s = std(N)
    tnef = tnef_stream([("Ảnh mặt trước thẻ.jpg", s[0].data, "image/jpeg"), ("Ảnh mặt sau thẻ.jpg", s[1].data, "image/jpeg"),
                        ("Ảnh chân dung.jpg", s[2].data, "image/jpeg")])
    yield "outlook_winmail_dat", req(N, files=[("winmail.dat", "application/ms-tnef", tnef)]), \
        expect(person=N, photos={"usable": 3, "distinct": 3}, attachments_0={"filename": "Ảnh mặt trước thẻ.jpg", "container": "winmail.dat", "usable": True})
    # Photos in a zip, with macOS's resource forks beside them.
    s = std(V)
    z = zip_of([("anh/mat_truoc.jpg", s[0].data), ("__MACOSX/anh/._mat_truoc.jpg", b"\0\5\x16\7fork"), ("anh/mat_sau.jpg", s[1].data), ("anh/chan_dung.jpg", s[2].data)])
    yield "photos_in_zip", req(V, files=[("anh_cccd.zip", "application/zip", z)]), \
        expect(person=V, photos={"usable": 3, "distinct": 3}, attachments_0={"filename": "mat_truoc.jpg", "container": "anh_cccd.zip", "usable": True})
    # A zip whose fourth entry is a bomb (64 MB of zeros): listed, not unpacked.
    s = std(A)
    z = zip_of([("1.jpg", s[0].data), ("2.jpg", s[1].data), ("3.jpg", s[2].data), ("4.png", b"\0" * (64 << 20))])
    yield "zip_bomb_entry", req(A, files=[("anh.zip", "application/zip", z)]), expect(person=A, warnings=["unread_archive"], photos={"usable": 3, "distinct": 3})
    # A JPEG cut at 60 % with an end marker forged onto it.
    s = std(B)
    forged = s[1].data[: len(s[1].data) * 6 // 10] + b"\xff\xd9"
    yield "truncated_jpeg_forged_end", req(B, photos=[s[0], Photo(forged, "mat_sau.jpg"), s[2]]), expect(problems=["unreadable_attachment", "too_few_photos"])
    # A PNG whose header declares 8000 x 6000 pixels over a few rows of data.
    s = std(L)
    import struct, zlib
    lying = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8000, 6000, 8, 0, 0, 0, 0)) + \
        png_chunk(b"IDAT", zlib.compress(b"\0" + bytes(range(256)) * 31 + b"\0" * 64)) + png_chunk(b"IEND", b"")
    yield "lying_png_header", req(L, photos=s + [Photo(lying, "anh4.png", "image/png")]), expect(problems=["unreadable_attachment"])
    # Old Mac mail: every line ends in a bare CR.
    raw = req(H, photos=std(H)).replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    yield "cr_only_line_ends", raw, expect(person=H)
    # A body in VISCII, declared so.
    d = D
    text = body_text(d[0], d[4], d[1])
    vis = envelope(d) + "Content-Type: multipart/mixed; boundary=\"V\"\r\n\r\n--V\r\nContent-Type: text/plain; charset=VISCII\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    raw = vis.encode() + viscii(text).replace(b"\n", b"\r\n") + b"\r\n" + "".join("--V\r\n" + image_part(p.data, p.filename, disposition="attachment") for p in std(d)).encode() + b"--V--\r\n"
    yield "viscii_body", raw, expect(person=d)
    # Bounces quoting our subject and the whole request.
    yield from bounce_cases(A, req(A, photos=std(A)))

def hostile_heavy():
    """Yields (name, raw): the worst cases of issue 10 at full size, for
    `huytk inspect` under /usr/bin/time (scripts/bench-worst)."""
    A = PEOPLE[0]
    s = photo_set(A)
    req = lambda photos=(), files=(), body=None: build(f"Yêu cầu hủy tài khoản + {A[1]}", body or body_text(A[0], A[4], A[1]),
                                                       photos=photos, files=files, sender=(A[0], "citizen@gmail.com"))
    png49 = png16_rgba(7000, 7000)
    yield "png16_rgba_49mp", req(s[:2] + [Photo(png49, "chan_dung.png", "image/png")])
    # Pictures past the 24 decoded per message are listed, not decoded:
    # 30 of the 49 MP PNGs are the most decoding one message can ask for.
    yield "png16_rgba_49mp_x30", req([Photo(png49, f"anh_{i}.png", "image/png") for i in range(30)])
    big = big_smooth(7000, 7000)
    yield "jpeg_7000x7000", req(s[:2] + [Photo(encode(big, "jpeg", 60), "chan_dung.jpg")])
    buf = io.BytesIO(); big.save(buf, "JPEG", quality=60, progressive=True)
    yield "jpeg_progressive_49mp", req(s[:2] + [Photo(buf.getvalue(), "chan_dung.jpg")])
    buf = io.BytesIO(); big.convert("RGBA").save(buf, "TIFF", compression="tiff_deflate")
    yield "tiff_rgba_49mp", req(s[:2] + [Photo(buf.getvalue(), "chan_dung.tif", "image/tiff")])
    buf = io.BytesIO(); big_smooth(3000, 2000).save(buf, "BMP")
    yield "bmp_6mp", req(s[:2] + [Photo(buf.getvalue(), "chan_dung.bmp", "image/bmp")])
    buf = io.BytesIO(); big_smooth(7000, 7000).save(buf, "WEBP", lossless=True)
    yield "webp_49mp", req(s[:2] + [Photo(buf.getvalue(), "chan_dung.webp", "image/webp")])
    # An iPhone's "HEIF Max" photo: 48 MP (8064 x 6048).
    yield "heic_48mp", req(s[:2] + [Photo(encode(big_smooth(8064, 6048), "heic"), "IMG_0001.HEIC", "image/heic")])
    yield "tiny_parts_3990", many_parts(3990)
    yield "tiny_parts_50000", many_parts(50000)
    yield "nesting_35000", nesting_bomb(35000)
    yield "long_line_2mb", long_line(2 << 20)
    # A zip of 16 entries of 64 MB of zeros each (a gigabyte unpacked).
    bomb = zip_of([(f"{i}.png", b"\0" * (64 << 20)) for i in range(16)])
    yield "zip_bomb_1gb", req(s, files=[("anh.zip", "application/zip", bomb)])
    tnef = tnef_stream([("chan_dung.png", png49, "image/png"), ("mat_truoc.jpg", s[0].data, "image/jpeg"), ("mat_sau.jpg", s[1].data, "image/jpeg")])
    yield "tnef_49mp_png", req(files=[("winmail.dat", "application/ms-tnef", tnef)])
    z = zip_of([(f"anh_{i}.png", png49) for i in range(8)], compress=False)
    yield "zip_8x49mp_png", req(files=[("anh.zip", "application/zip", z)])

def write_hostile(out):
    os.makedirs(out, exist_ok=True)
    for name, raw in hostile_heavy():
        open(os.path.join(out, name + ".eml"), "wb").write(raw)
        print(f"{name}: {len(raw)} bytes")

if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "console":
        write_console(sys.argv[2])
        sys.exit(0)
    if len(sys.argv) >= 3 and sys.argv[1] == "hostile":
        write_hostile(sys.argv[2])
        sys.exit(0)
    if len(sys.argv) >= 3 and sys.argv[1] == "tests":
        write_tests(sys.argv[2], int(sys.argv[3]) if len(sys.argv) >= 4 else 1)
        if len(sys.argv) >= 4:
            sys.exit(0)
    elif len(sys.argv) >= 4 and sys.argv[1] == "bench-fast":
        write_bench_fast(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "bench":
        write_bench(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
