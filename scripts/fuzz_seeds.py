#!/usr/bin/env python3
"""Small seed messages for the fuzzer (fuzz/seeds): every MIME shape and
image format of the corpus, with pictures small enough for libFuzzer."""
import io, os, sys
sys.path.insert(0, os.path.dirname(__file__))
import gen_corpus as g
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
A = g.PEOPLE[0]
qr = g.qr_image(g.qr_text(A[0], A[1], A[2], A[3], A[5]), module=3).convert("L").resize((320, 320))
card = Image.new("L", (480, 320), 220); card.paste(qr.resize((300, 300)), (170, 10))
pics = {
    "png": (lambda b: (card.convert("1").save(b, "PNG"), b)[1]),
    "gif": (lambda b: (card.convert("1").save(b, "GIF"), b)[1]),
    "jpeg": (lambda b: (Image.new("L", (320, 320), 128).save(b, "JPEG", quality=10), b)[1]),
    "webp": (lambda b: (Image.new("L", (16, 16), 128).save(b, "WEBP", quality=10), b)[1]),
}
n = 0
for fmt, make in pics.items():
    data = make(io.BytesIO()).getvalue()
    for body in [g.body_text(A[0], A[4], A[1]), "Yêu cầu hủy tài khoản 187389815\n"]:
        raw = g.build(f"Yêu cầu hủy tài khoản + {A[1]}", body, photos=[g.Photo(data, f"a.{fmt}", f"image/{fmt}")])
        n += 1
        open(os.path.join(out, f"seed{n:02d}.eml"), "wb").write(raw)
for name, raw, _ in g.cases():
    if len(raw) < 8000:
        n += 1
        open(os.path.join(out, f"seed{n:02d}.eml"), "wb").write(raw)
print(n, "seeds;", sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)), "bytes")
