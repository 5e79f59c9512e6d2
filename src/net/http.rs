//! The desk's one HTTP/1.1 client (one request per connection, `http://`
//! or `https://` through [`super::tls`]): enough for Kannel's sendsms, a
//! JSON SMS gateway and the portal's account API. Every call is bounded:
//! a connect timeout, an overall timeout, and a cap on the answer's body
//! (an answer past it is an error, never silently cut short).

use std::time::Duration;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};

use super::tls::{self, TlsError};

/// The largest body an answer may have unless the client says otherwise:
/// gateways and the account API answer in a few hundred bytes.
pub const MAX_BODY: usize = 1024 * 1024;

/// The largest status line plus headers accepted.
const MAX_HEAD: usize = 64 * 1024;

/// The longest a connection may take to open unless the client says
/// otherwise (the overall timeout still applies when it is shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Body as text.
    pub body: String,
}

impl HttpReply {
    /// The answer if its status is 2xx, else [`HttpError::Status`].
    pub fn success(self) -> Result<HttpReply, HttpError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(HttpError::Status {
                status: self.status,
                body: self.body.trim().chars().take(500).collect(),
            })
        }
    }
}

/// Why no usable answer came. `target` is the URL without its query
/// string, which can hold credentials (Kannel's password).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL cannot be called.
    #[error("{target}: {reason}")]
    BadUrl {
        /// The URL without its query.
        target: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The connection was refused or could not be made.
    #[error("connecting to {authority}: {source}")]
    Connect {
        /// host:port.
        authority: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The connection did not open in time.
    #[error("connecting to {authority}: no connection within {after:?}")]
    ConnectTimeout {
        /// host:port.
        authority: String,
        /// The connect timeout.
        after: Duration,
    },
    /// TLS could not be set up or its handshake failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The whole exchange took longer than the overall timeout.
    #[error("{target}: no complete answer within {after:?}")]
    Timeout {
        /// The URL without its query.
        target: String,
        /// The overall timeout.
        after: Duration,
    },
    /// Sending or reading failed half-way.
    #[error("{target}: {source}")]
    Io {
        /// The URL without its query.
        target: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The body is over the client's cap.
    #[error("{target}: the answer's body is over {limit} bytes")]
    TooLarge {
        /// The URL without its query.
        target: String,
        /// The cap.
        limit: usize,
    },
    /// The server's bytes are not an HTTP/1.x answer.
    #[error("{target}: not an HTTP answer: {reason}")]
    Malformed {
        /// The URL without its query.
        target: String,
        /// What was wrong.
        reason: String,
    },
    /// The server answered, but not with 2xx (from [`HttpReply::success`]).
    #[error("answered {status}: {body}")]
    Status {
        /// Status code.
        status: u16,
        /// The start of the body, for the log.
        body: String,
    },
}

/// Percent-encodes a query value or path segment.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The bounded client: cheap to build, holds no connection.
#[derive(Debug, Clone, Copy)]
pub struct HttpClient {
    timeout: Duration,
    connect_timeout: Duration,
    max_body: usize,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Where a URL points.
struct Target<'u> {
    tls: bool,
    authority: &'u str,
    host: &'u str,
    port: u16,
    path: &'u str,
    /// The URL without its query, for errors.
    shown: String,
}

fn parse_url(url: &str) -> Result<Target<'_>, HttpError> {
    let shown = url.split_once('?').map_or(url, |(u, _)| u).to_owned();
    let bad = |reason| HttpError::BadUrl {
        target: shown.clone(),
        reason,
    };
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(bad("not an http(s) URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => {
            (h, p.parse::<u16>().map_err(|_| bad("bad port"))?)
        }
        _ => (authority, if tls { 443 } else { 80 }),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(Target {
        tls,
        authority,
        host: host.trim_matches(['[', ']']),
        port,
        path,
        shown,
    })
}

impl HttpClient {
    /// A client whose calls end after `timeout`, with the default connect
    /// timeout (10 s, or `timeout` if shorter) and body cap ([`MAX_BODY`]).
    pub fn new(timeout: Duration) -> HttpClient {
        HttpClient {
            timeout,
            connect_timeout: CONNECT_TIMEOUT.min(timeout),
            max_body: MAX_BODY,
        }
    }

    /// The same client with another connect timeout.
    pub fn connect_timeout(self, connect_timeout: Duration) -> HttpClient {
        HttpClient {
            connect_timeout,
            ..self
        }
    }

    /// The same client with another body cap.
    pub fn max_body(self, max_body: usize) -> HttpClient {
        HttpClient { max_body, ..self }
    }

    /// Sends one request and reads the whole answer, within the timeouts.
    /// Any status is an answer; see [`HttpReply::success`].
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpReply, HttpError> {
        let target = parse_url(url)?;
        match tokio::time::timeout(self.timeout, self.exchange(&target, method, headers, body))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout {
                target: target.shown,
                after: self.timeout,
            }),
        }
    }

    async fn open(&self, t: &Target<'_>) -> Result<Box<dyn Stream>, HttpError> {
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect((t.host, t.port)),
        )
        .await
        .map_err(|_| HttpError::ConnectTimeout {
            authority: t.authority.to_owned(),
            after: self.connect_timeout,
        })?
        .map_err(|source| HttpError::Connect {
            authority: t.authority.to_owned(),
            source,
        })?;
        if t.tls {
            Ok(Box::new(tls::connect(tcp, t.host, false).await?))
        } else {
            Ok(Box::new(tcp))
        }
    }

    async fn exchange(
        &self,
        t: &Target<'_>,
        method: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpReply, HttpError> {
        let mut stream = self.open(t).await?;
        let io = |source| HttpError::Io {
            target: t.shown.clone(),
            source,
        };
        let mut head = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: huytk\r\nContent-Length: {}\r\n",
            t.path,
            t.authority,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.map_err(io)?;
        stream.write_all(body).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        let mut reader = tokio::io::BufReader::new(stream);
        Answer {
            target: &t.shown,
            limit: self.max_body,
        }
        .read(&mut reader)
        .await
    }
}

/// Reads one answer from a connection, within the body cap.
struct Answer<'t> {
    target: &'t str,
    limit: usize,
}

/// How the body's end is known.
enum Framing {
    Length(usize),
    Chunked,
    Close,
}

impl Answer<'_> {
    fn malformed(&self, reason: impl Into<String>) -> HttpError {
        HttpError::Malformed {
            target: self.target.to_owned(),
            reason: reason.into(),
        }
    }

    fn too_large(&self) -> HttpError {
        HttpError::TooLarge {
            target: self.target.to_owned(),
            limit: self.limit,
        }
    }

    fn io(&self, source: std::io::Error) -> HttpError {
        HttpError::Io {
            target: self.target.to_owned(),
            source,
        }
    }

    async fn read<R: AsyncBufRead + Unpin>(&self, r: &mut R) -> Result<HttpReply, HttpError> {
        let (status, framing) = self.head(r).await?;
        let body = match framing {
            Framing::Length(n) if n > self.limit => return Err(self.too_large()),
            Framing::Length(n) => {
                let mut body = vec![0; n];
                r.read_exact(&mut body).await.map_err(|e| self.io(e))?;
                body
            }
            Framing::Chunked => self.chunked(r).await?,
            Framing::Close => self.until_close(r).await?,
        };
        Ok(HttpReply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// One line (without its CRLF) of at most `max` bytes.
    async fn line<R: AsyncBufRead + Unpin>(
        &self,
        r: &mut R,
        max: usize,
    ) -> Result<String, HttpError> {
        let mut line = Vec::new();
        (&mut *r)
            .take(max as u64 + 2)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| self.io(e))?;
        if !line.ends_with(b"\n") {
            return Err(if line.len() > max {
                self.malformed("a line is too long")
            } else {
                self.malformed("the connection closed mid-answer")
            });
        }
        line.pop();
        if line.ends_with(b"\r") {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    async fn head<R: AsyncBufRead + Unpin>(&self, r: &mut R) -> Result<(u16, Framing), HttpError> {
        let mut left = MAX_HEAD;
        let first = self.line(r, left).await?;
        left = left.saturating_sub(first.len() + 2);
        let status = first
            .strip_prefix("HTTP/1.")
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| self.malformed(format!("status line {:?}", truncate(&first))))?;
        let mut framing = Framing::Close;
        loop {
            let line = self.line(r, left).await?;
            if line.is_empty() {
                break;
            }
            left = left
                .checked_sub(line.len() + 2)
                .ok_or_else(|| self.malformed("the headers are too long"))?;
            let Some((name, value)) = line.split_once(':') else {
                return Err(self.malformed(format!("header {:?}", truncate(&line))));
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
                framing = Framing::Chunked;
            } else if name == "content-length" && !matches!(framing, Framing::Chunked) {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| self.malformed(format!("Content-Length {value:?}")))?;
                framing = Framing::Length(n);
            }
        }
        Ok((status, framing))
    }

    async fn chunked<R: AsyncBufRead + Unpin>(&self, r: &mut R) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let line = self.line(r, 1024).await?;
            let size = line.split(';').next().unwrap_or("").trim();
            let n = usize::from_str_radix(size, 16)
                .map_err(|_| self.malformed(format!("chunk size {:?}", truncate(size))))?;
            if n == 0 {
                // Trailers are not read: the connection closes after them.
                return Ok(body);
            }
            if n > self.limit - body.len() {
                return Err(self.too_large());
            }
            let start = body.len();
            body.resize(start + n, 0);
            r.read_exact(&mut body[start..])
                .await
                .map_err(|e| self.io(e))?;
            if !self.line(r, 0).await?.is_empty() {
                return Err(self.malformed("no CRLF after a chunk"));
            }
        }
    }

    async fn until_close<R: AsyncBufRead + Unpin>(&self, r: &mut R) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        // A server that closes without TLS close_notify still gave its
        // whole answer: with no length to check, the close is the end.
        match (&mut *r)
            .take(self.limit as u64 + 1)
            .read_to_end(&mut body)
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(e) => return Err(self.io(e)),
        }
        if body.len() > self.limit {
            return Err(self.too_large());
        }
        Ok(body)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests;
