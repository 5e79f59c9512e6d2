//! Corpus-style: a whole request message with photos built here.
use super::*;
use base64::Engine;

/// A photo-like grey picture: gradients and a pattern, no flat area.
fn textured(w: u32, h: u32, seed: u32) -> Vec<u8> {
    (0..h)
        .flat_map(|y| {
            (0..w).map(move |x| {
                let n = (x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503) ^ seed) >> 7;
                ((x * 255 / w + y * 3 + seed * 40 + (n % 48)) % 256) as u8
            })
        })
        .collect()
}

fn jpeg(w: u32, h: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode(pixels, w, h, image::ExtendedColorType::L8)
        .unwrap();
    out
}

fn request(photos: &[(&str, &[u8])]) -> Report {
    let mut raw = String::from(
        "From: An <an@gmail.com>\r\nSubject: Yêu cầu hủy tài khoản 079203001234\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHọ và tên: Nguyễn Văn An\r\nSĐT: 0912345678\r\nLý do: trùng tài khoản\r\n",
    );
    for (name, bytes) in photos {
        raw.push_str(&format!(
            "--B\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
        ));
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        for line in b64.as_bytes().chunks(76) {
            raw.push_str(std::str::from_utf8(line).unwrap());
            raw.push_str("\r\n");
        }
    }
    raw.push_str("--B--\r\n");
    inspect(raw.as_bytes(), None, &InspectOptions { current_year: 2026 })
}

fn good(seed: u32) -> Vec<u8> {
    jpeg(640, 480, &textured(640, 480, seed))
}

#[test]
fn complete_photos_count() {
    let r = request(&[
        ("a.jpg", &good(1)),
        ("b.jpg", &good(2)),
        ("c.jpg", &good(3)),
    ]);
    assert_eq!(
        r.assessment.photos.distinct, 3,
        "{:?}",
        r.assessment.problems
    );
    assert_eq!(r.assessment.verdict, Verdict::Complete);
}

#[test]
fn a_jpeg_cut_at_60_percent_with_an_end_marker_is_unreadable() {
    let whole = good(1);
    let cut = [&whole[..whole.len() * 6 / 10], &[0xFF, 0xD9][..]].concat();
    let r = request(&[("a.jpg", &cut), ("b.jpg", &good(2)), ("c.jpg", &good(3))]);
    let a = &r.assessment.attachments[0];
    assert!(!a.usable);
    assert_eq!(a.problems, ["unreadable_attachment"]);
    assert!(r
        .assessment
        .problems
        .contains(&Problem::UnreadableAttachment));
    assert_eq!(r.assessment.photos.usable, 2);
}

#[test]
fn a_tiny_jpeg_declaring_a_huge_frame_is_not_a_photo() {
    let mut tiny = jpeg(16, 16, &textured(16, 16, 5));
    // SOF0: FF C0, length, precision, height, width.
    let sof = tiny.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    tiny[sof + 5..sof + 7].copy_from_slice(&7000u16.to_be_bytes());
    tiny[sof + 7..sof + 9].copy_from_slice(&7000u16.to_be_bytes());
    assert!(tiny.len() < 1000, "{} bytes", tiny.len());
    let r = request(&[("a.jpg", &tiny), ("b.jpg", &good(2)), ("c.jpg", &good(3))]);
    let a = &r.assessment.attachments[0];
    assert!(!a.usable, "{a:?}");
    assert_eq!(a.problems, ["unreadable_attachment"]);
    assert_eq!(r.assessment.photos.usable, 2);
}

#[test]
fn blank_pictures_are_blank_photos() {
    let flat = |level: u8| jpeg(640, 480, &vec![level; 640 * 480]);
    // A flat colour with sensor noise of a few levels.
    let noisy: Vec<u8> = textured(640, 480, 9).iter().map(|v| 128 + v % 5).collect();
    for (what, photo) in [
        ("white", flat(255)),
        ("black", flat(0)),
        ("grey", flat(128)),
        ("noisy grey", jpeg(640, 480, &noisy)),
    ] {
        let r = request(&[("a.jpg", &photo), ("b.jpg", &good(2)), ("c.jpg", &good(3))]);
        let a = &r.assessment.attachments[0];
        assert!(!a.usable, "{what}");
        assert_eq!(a.problems, ["blank_photo"], "{what}");
        assert!(
            r.assessment.problems.contains(&Problem::BlankPhoto),
            "{what}"
        );
        assert_eq!(r.assessment.verdict, Verdict::Incomplete, "{what}");
    }
}

// "iPhone and Apple Mail photos vanish": each form below counted 0
// photos and listed no attachment.

const HEAD: &str = "From: An <an@gmail.com>\r\nSubject: Yêu cầu hủy tài khoản 079203001234\r\nMIME-Version: 1.0\r\n";
const TEXT: &str = "Content-Type: text/plain; charset=utf-8\r\n\r\nHọ và tên: Nguyễn Văn An\r\nSĐT: 0912345678\r\nLý do: trùng tài khoản\r\n";

fn b64(bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    b64.as_bytes()
        .chunks(76)
        .map(|l| format!("{}\r\n", std::str::from_utf8(l).unwrap()))
        .collect()
}

/// An image part with these extra headers, base64.
fn image_part(extra: &str, bytes: &[u8]) -> String {
    format!(
        "Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n{extra}\r\n{}",
        b64(bytes)
    )
}

/// `multipart/<sub>` of these parts (each its headers and body).
fn multipart(sub: &str, boundary: &str, parts: &[String]) -> String {
    let mut out = format!("Content-Type: multipart/{sub}; boundary=\"{boundary}\"\r\n\r\n");
    for p in parts {
        out.push_str(&format!("--{boundary}\r\n{p}"));
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out
}

fn inspect_raw(raw: &str) -> Report {
    inspect(raw.as_bytes(), None, &InspectOptions { current_year: 2026 })
}

fn assert_photos(r: &Report, n: usize, what: &str) {
    let a = &r.assessment;
    assert_eq!(a.attachments.len(), n, "{what}: {:?}", a.attachments);
    assert!(
        a.attachments
            .iter()
            .all(|x| x.usable && x.format == Some(Format::Jpeg)),
        "{what}: {:?}",
        a.attachments
    );
    assert_eq!(a.photos.usable, n, "{what}");
    assert_eq!(a.photos.distinct, n, "{what}");
}

fn three_inline(extra: impl Fn(u32) -> String) -> Vec<String> {
    (1..=3).map(|s| image_part(&extra(s), &good(s))).collect()
}

fn ios_mixed() -> String {
    let mut parts = vec![TEXT.to_owned()];
    parts.extend(three_inline(|s| {
        format!("Content-Disposition: inline; filename=\"IMG_000{s}.jpeg\"\r\n")
    }));
    multipart("mixed", "M", &parts)
}

#[test]
fn ios_inline_images_without_content_id_count() {
    let r = inspect_raw(&format!("{HEAD}{}", ios_mixed()));
    assert_photos(&r, 3, "ios mixed");
    assert_eq!(
        r.assessment.verdict,
        Verdict::Complete,
        "{:?}",
        r.assessment.problems
    );
    assert_eq!(
        r.assessment.attachments[0].filename.as_deref(),
        Some("IMG_0001.jpeg")
    );
}

/// Found by fuzz/structured: two nested message/rfc822 parts with
/// bare-CR line ends reach a `debug_assert!(false)` in mail-parser
/// 0.11.9. A build with debug assertions refuses the message with the
/// reason; the release build parses it.
#[test]
fn a_parser_failure_refuses_the_message_with_the_reason() {
    let raw = "From: An <an@gmail.com>\rTo: dichvucong@chinhphu.vn\rSubject: Yêu cầu hủy tài khoản + 079203001234\rMIME-Version: 1.0\rContent-Type: multipart/mixed; boundary=\"b0\"\r\r--b0\rContent-Type: message/rfc822\r\rFrom: a@b.vn\rSubject: Fwd: Yeu cau huy tai khoan 079203001234\rMIME-Version: 1.0\rContent-Type: message/rfc822\r\rFrom: a@b.vn\rSubject: Fwd: Yeu cau huy tai khoan 079203001234\rMIME-Version: 1.0\r\rx\r\r--b0--\r";
    let result = try_examine(raw.as_bytes());
    if cfg!(debug_assertions) {
        let refused = result.unwrap_err();
        assert_eq!(refused, Refused::ParserFailed);
        assert_eq!(
            refused.to_string(),
            "message refused: the MIME parser failed on it"
        );
    } else {
        assert_eq!(result.unwrap().kind, Kind::DeletionRequest);
    }
}

#[test]
fn a_broken_inline_photo_is_listed_as_unreadable() {
    // iOS Mail's form (inline, no Content-ID) with the third picture's
    // bytes garbled: listed, not dropped.
    let mut parts = vec![TEXT.to_owned()];
    parts.extend((1..=2).map(|s| {
        image_part(
            &format!("Content-Disposition: inline; filename=\"IMG_000{s}.jpeg\"\r\n"),
            &good(s),
        )
    }));
    parts.push(image_part(
        "Content-Disposition: inline; filename=\"IMG_0003.jpeg\"\r\n",
        b"not a picture at all, whatever the header says",
    ));
    let r = inspect_raw(&format!("{HEAD}{}", multipart("mixed", "M", &parts)));
    let a = &r.assessment;
    assert_eq!(a.attachments.len(), 3, "{:?}", a.attachments);
    assert_eq!(a.attachments[2].filename.as_deref(), Some("IMG_0003.jpeg"));
    assert_eq!(a.attachments[2].problems, vec!["unreadable_attachment"]);
    assert!(a.problems.contains(&Problem::UnreadableAttachment));
}

#[test]
fn apple_rich_alternative_images_count() {
    let mut inner = vec!["Content-Type: text/html; charset=utf-8\r\n\r\n<div>Họ và tên: Nguyễn Văn An<br>SĐT: 0912345678<br>Lý do: trùng tài khoản</div><img src=\"cid:x\">\r\n".to_owned()];
    inner.extend(three_inline(|s| {
        format!("Content-Disposition: inline; filename=\"IMG_000{s}.jpeg\"\r\n")
    }));
    let raw = format!(
        "{HEAD}{}",
        multipart(
            "alternative",
            "A",
            &[TEXT.to_owned(), multipart("mixed", "M", &inner)]
        )
    );
    let r = inspect_raw(&raw);
    assert_photos(&r, 3, "apple alternative");
    assert_eq!(
        r.assessment.verdict,
        Verdict::Complete,
        "{:?}",
        r.assessment.problems
    );
}

#[test]
fn images_without_content_disposition_count() {
    let mut parts = vec![TEXT.to_owned()];
    parts.extend(three_inline(|_| String::new()));
    let r = inspect_raw(&format!("{HEAD}{}", multipart("mixed", "M", &parts)));
    assert_photos(&r, 3, "no disposition");
    assert_eq!(
        r.assessment.verdict,
        Verdict::Complete,
        "{:?}",
        r.assessment.problems
    );
}

#[test]
fn a_message_whose_body_is_an_image_counts_it() {
    let r = inspect_raw(&format!("{HEAD}{}", image_part("", &good(1))));
    assert_eq!(r.assessment.kind, Kind::DeletionRequest);
    assert_photos(&r, 1, "single part");
}

#[test]
fn the_forms_inside_a_forwarded_message_count() {
    let mut no_disposition = vec![TEXT.to_owned()];
    no_disposition.extend(three_inline(|_| String::new()));
    let mut inner =
        vec!["Content-Type: text/html; charset=utf-8\r\n\r\n<div>x</div>\r\n".to_owned()];
    inner.extend(three_inline(|s| {
        format!("Content-Disposition: inline; filename=\"IMG_000{s}.jpeg\"\r\n")
    }));
    for (what, nested, n) in [
        ("ios mixed", ios_mixed(), 3),
        (
            "apple alternative",
            multipart(
                "alternative",
                "A",
                &[TEXT.to_owned(), multipart("mixed", "M", &inner)],
            ),
            3,
        ),
        (
            "no disposition",
            multipart("mixed", "M", &no_disposition),
            3,
        ),
        ("single part", image_part("", &good(1)), 1),
    ] {
        let forwarded = format!("Content-Type: message/rfc822\r\n\r\nFrom: An <an@icloud.com>\r\nSubject: ảnh\r\nMIME-Version: 1.0\r\n{nested}");
        let raw = format!(
            "{HEAD}{}",
            multipart("mixed", "F", &[TEXT.to_owned(), forwarded])
        );
        let r = inspect_raw(&raw);
        assert_photos(&r, n, what);
    }
}

fn encoded(w: u32, h: u32, seed: u32, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_raw(w, h, textured(w, h, seed))
        .unwrap()
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

#[test]
fn bmp_and_tiff_photos_are_read() {
    let bmp = encoded(640, 480, 1, image::ImageFormat::Bmp);
    let tiff = encoded(640, 480, 2, image::ImageFormat::Tiff);
    let r = request(&[("a.bmp", &bmp), ("b.tif", &tiff), ("c.jpg", &good(3))]);
    let a = &r.assessment.attachments;
    assert_eq!(a[0].format, Some(Format::Bmp));
    assert_eq!(a[1].format, Some(Format::Tiff));
    assert!(a.iter().all(|x| x.usable && x.width == Some(640)), "{a:?}");
    assert_eq!(
        r.assessment.photos.distinct, 3,
        "{:?}",
        r.assessment.problems
    );
    assert_eq!(r.assessment.verdict, Verdict::Complete);
}

#[test]
fn a_cut_bmp_or_tiff_is_unreadable() {
    for format in [image::ImageFormat::Bmp, image::ImageFormat::Tiff] {
        let whole = encoded(640, 480, 1, format);
        let cut = &whole[..whole.len() / 2];
        let r = request(&[("a", cut), ("b.jpg", &good(2)), ("c.jpg", &good(3))]);
        let a = &r.assessment.attachments[0];
        assert!(!a.usable, "{format:?}");
        assert_eq!(a.problems, ["unreadable_attachment"], "{format:?}");
    }
}
