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
