//! Citizen mail built by the tests: a request with the fields, headers and
//! photos a case needs. The photos are the card (with its QR: number
//! 079203001234, old CMND 025123456, "Nguyễn Văn An") and portrait of
//! `tests/console/cccd_with_old_cmnd.eml`.

use base64::Engine;
use mail_parser::MimeHeaders;
use std::path::PathBuf;

/// One message to build.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Sender address.
    pub from: String,
    /// Subject (encoded as UTF-8).
    pub subject: String,
    /// Body lines.
    pub body: String,
    /// More headers (References, In-Reply-To …).
    pub headers: Vec<(String, String)>,
    /// Attachments: file name and bytes.
    pub files: Vec<(String, Vec<u8>)>,
    /// Its Message-ID (without brackets).
    pub message_id: String,
}

/// The three photos of the fixture request: front (with the QR), back,
/// portrait.
pub fn photos() -> Vec<(String, Vec<u8>)> {
    let raw = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console/cccd_with_old_cmnd.eml"),
    )
    .unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    m.attachments()
        .map(|a| {
            (
                a.attachment_name().unwrap_or("anh.jpg").to_owned(),
                a.contents().to_vec(),
            )
        })
        .collect()
}

impl Mail {
    /// A complete request for `number` from `from`: name, phone, reason
    /// and the three photos.
    pub fn request(from: &str, number: &str, name: &str, phone: &str) -> Mail {
        Mail {
            from: from.to_owned(),
            subject: format!("Yêu cầu hủy tài khoản + {number}"),
            body: format!(
                "Kính gửi Bộ phận hỗ trợ,\n\n+ Họ và tên: {name}\n+ Số điện thoại: {phone}\n\
                 + Yêu cầu hủy tài khoản {number}\n+ Lý do: Sai thông tin khi đăng nhập bằng VNeID\n"
            ),
            headers: Vec::new(),
            files: photos(),
            message_id: format!(
                "{}.{}@test",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ),
        }
    }

    /// The same with only the first `n` photos.
    pub fn photos(mut self, n: usize) -> Mail {
        self.files.truncate(n);
        self
    }

    /// The same with EXIF (camera model, GPS position) in every photo.
    pub fn exif(mut self) -> Mail {
        for (_, bytes) in &mut self.files {
            *bytes = with_exif(bytes);
        }
        self
    }

    /// The same with a header added.
    pub fn header(mut self, name: &str, value: &str) -> Mail {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same with another subject.
    pub fn subject(mut self, s: &str) -> Mail {
        self.subject = s.to_owned();
        self
    }

    /// The RFC 5322 bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let boundary = "=_huytk_test_boundary";
        let mut out = format!(
            "MIME-Version: 1.0\r\nFrom: <{}>\r\nTo: dichvucong@chinhphu.vn\r\nSubject: =?utf-8?b?{}?=\r\n\
             Date: Tue, 01 Dec 2026 09:00:00 +0700\r\nMessage-ID: <{}>\r\n",
            self.from,
            b64.encode(self.subject.as_bytes()),
            self.message_id
        );
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            wrap(&b64.encode(self.body.as_bytes()))
        ));
        for (name, bytes) in &self.files {
            out.push_str(&format!(
                "--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{}\r\n",
                wrap(&b64.encode(bytes))
            ));
        }
        out.push_str(&format!("--{boundary}--\r\n"));
        out.into_bytes()
    }
}

fn wrap(s: &str) -> String {
    s.as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A shipped demo message with its sender replaced.
pub fn demo(name: &str, from: &str, to: &str) -> Vec<u8> {
    let raw = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("demo")
            .join(name),
    )
    .unwrap();
    String::from_utf8_lossy(&raw).replace(from, to).into_bytes()
}

/// The camera model written into the EXIF of [`with_exif`].
pub const EXIF_MODEL: &str = "Huytk Test Phone 12";

/// `jpeg` with an EXIF block (APP1) right after its start: the camera's
/// make and model and a GPS position (10°46'N 106°42'E, Saigon), as a phone
/// writes them. The pixels are untouched, so the photo reads as before.
pub fn with_exif(jpeg: &[u8]) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "not a JPEG");
    let tiff = exif_tiff();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(2 + 6 + tiff.len()).unwrap().to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A big-endian TIFF structure: IFD0 (Make, Model, the GPS IFD's offset)
/// then the GPS IFD (latitude and longitude with their references).
fn exif_tiff() -> Vec<u8> {
    const ASCII: u16 = 2;
    const LONG: u16 = 4;
    const RATIONAL: u16 = 5;
    let make = b"Huytk\0".to_vec();
    let model = format!("{EXIF_MODEL}\0").into_bytes();
    let rationals = |v: [(u32, u32); 3]| -> Vec<u8> {
        v.iter()
            .flat_map(|(n, d)| [n.to_be_bytes(), d.to_be_bytes()].concat())
            .collect()
    };
    let (lat, lon) = (
        rationals([(10, 1), (46, 1), (0, 1)]),
        rationals([(106, 1), (42, 1), (0, 1)]),
    );
    // Offsets from the TIFF header: IFD0 at 8, then its data, then the
    // GPS IFD, then the GPS data.
    let ifd_len = |entries: u32| 2 + 12 * entries + 4;
    let make_at = 8 + ifd_len(3);
    let model_at = make_at + make.len() as u32;
    let gps_at = model_at + model.len() as u32;
    let lat_at = gps_at + ifd_len(4);
    let lon_at = lat_at + lat.len() as u32;
    let entry = |tag: u16, kind: u16, count: u32, value: [u8; 4]| -> Vec<u8> {
        [
            &tag.to_be_bytes()[..],
            &kind.to_be_bytes(),
            &count.to_be_bytes(),
            &value,
        ]
        .concat()
    };
    let mut t = b"MM\0\x2A\0\0\0\x08".to_vec();
    t.extend_from_slice(&3u16.to_be_bytes());
    t.extend(entry(
        0x010F,
        ASCII,
        make.len() as u32,
        make_at.to_be_bytes(),
    ));
    t.extend(entry(
        0x0110,
        ASCII,
        model.len() as u32,
        model_at.to_be_bytes(),
    ));
    t.extend(entry(0x8825, LONG, 1, gps_at.to_be_bytes()));
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend(make);
    t.extend(model);
    t.extend_from_slice(&4u16.to_be_bytes());
    t.extend(entry(0x0001, ASCII, 2, *b"N\0\0\0"));
    t.extend(entry(0x0002, RATIONAL, 3, lat_at.to_be_bytes()));
    t.extend(entry(0x0003, ASCII, 2, *b"E\0\0\0"));
    t.extend(entry(0x0004, RATIONAL, 3, lon_at.to_be_bytes()));
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend(lat);
    t.extend(lon);
    t
}
