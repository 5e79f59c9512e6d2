//! The client against tiny loopback servers written here: each fault
//! (an oversized body, silence, a refused port, a server that does not
//! speak TLS, garbage) is one a real gateway cannot be made to show on
//! demand.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `reply` to one connection after reading the request head, then
/// closes; returns the base URL.
async fn serve_once(reply: Vec<u8>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        // The client may give up first (a cap reached): that is the point.
        let _ = s.write_all(&reply).await;
        let _ = s.shutdown().await;
    });
    format!("http://{addr}")
}

/// The error, or a panic that shows the answer's size, not its bytes.
fn fails(r: Result<HttpReply, HttpError>) -> HttpError {
    match r {
        Ok(a) => panic!("answered {} with {} bytes", a.status, a.body.len()),
        Err(e) => e,
    }
}

fn client() -> HttpClient {
    HttpClient::new(Duration::from_secs(5))
}

fn sized(status: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn chunked(body: &[u8], piece: usize) -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for c in body.chunks(piece) {
        r.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        r.extend_from_slice(c);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

fn until_close(body: &[u8]) -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    r.extend_from_slice(body);
    r
}

#[tokio::test]
async fn reads_each_framing() {
    for reply in [
        sized("200 OK", b"hello"),
        chunked(b"hello", 2),
        until_close(b"hello"),
    ] {
        let url = serve_once(reply).await;
        let r = client().request("GET", &url, &[], b"").await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "hello"));
    }
}

#[tokio::test]
async fn a_body_at_the_cap_is_read_whole() {
    let body = vec![b'a'; MAX_BODY];
    for reply in [
        sized("200 OK", &body),
        chunked(&body, 4096),
        until_close(&body),
    ] {
        let url = serve_once(reply).await;
        let r = client().request("GET", &url, &[], b"").await.unwrap();
        assert_eq!(r.body.len(), MAX_BODY);
    }
}

#[tokio::test]
async fn a_body_past_the_cap_is_an_error_in_every_framing() {
    let body = vec![b'a'; MAX_BODY + 1];
    for reply in [
        sized("200 OK", &body),
        chunked(&body, 4096),
        until_close(&body),
    ] {
        let url = serve_once(reply).await;
        let e = fails(client().request("GET", &url, &[], b"").await);
        assert!(
            matches!(
                e,
                HttpError::TooLarge {
                    limit: MAX_BODY,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    // A smaller cap set on the client is the one kept.
    let url = serve_once(sized("200 OK", b"0123456789")).await;
    let e = client()
        .max_body(9)
        .request("GET", &url, &[], b"")
        .await
        .unwrap_err();
    assert!(matches!(e, HttpError::TooLarge { limit: 9, .. }), "{e:?}");
}

#[tokio::test]
async fn a_refusal_keeps_its_status_and_body() {
    let url = serve_once(sized("503 Service Unavailable", b"queue full\n")).await;
    let r = client().request("GET", &url, &[], b"").await.unwrap();
    assert_eq!(r.status, 503);
    let e = r.success().unwrap_err();
    assert!(
        matches!(&e, HttpError::Status { status: 503, body } if body == "queue full"),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "answered 503: queue full");
}

#[tokio::test]
async fn silence_is_a_timeout_that_names_no_query() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    // Accepts and holds the connection without a word.
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(s);
    });
    let url = format!("http://{addr}/cgi-bin/sendsms?password=secret");
    let started = std::time::Instant::now();
    let e = HttpClient::new(Duration::from_millis(300))
        .request("GET", &url, &[], b"")
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(e, HttpError::Timeout { .. }), "{e:?}");
    let shown = e.to_string();
    assert!(shown.contains("/cgi-bin/sendsms"), "{shown}");
    assert!(
        !shown.contains("secret"),
        "the password reached the log: {shown}"
    );
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let e = client()
        .request("GET", &format!("http://{addr}/"), &[], b"")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, HttpError::Connect { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_server_without_tls_fails_the_handshake() {
    // Answers in plain HTTP at once, without waiting for a request head
    // (a ClientHello never ends in a blank line).
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let _ = s.write_all(&sized("200 OK", b"plain")).await;
        let _ = s.shutdown().await;
    });
    let url = format!("https://{addr}/");
    let e = fails(client().request("GET", &url, &[], b"").await);
    assert!(
        matches!(e, HttpError::Tls(TlsError::Handshake { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn garbage_is_malformed() {
    for reply in [
        b"SSH-2.0-OpenSSH\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"HTTP/1.1 200 OK\r\nContent-".to_vec(),
    ] {
        let url = serve_once(reply.clone()).await;
        let e = fails(client().request("GET", &url, &[], b"").await);
        assert!(
            matches!(e, HttpError::Malformed { .. }),
            "{:?}: {e:?}",
            String::from_utf8_lossy(&reply)
        );
    }
}

#[tokio::test]
async fn a_body_cut_short_is_an_error() {
    let url = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec()).await;
    let e = fails(client().request("GET", &url, &[], b"").await);
    assert!(matches!(e, HttpError::Io { .. }), "{e:?}");
}

#[tokio::test]
async fn not_a_url_is_refused_before_any_connection() {
    for url in ["ftp://example.org/", "http://:80/", "http://host:port/"] {
        let e = fails(client().request("GET", url, &[], b"").await);
        assert!(matches!(e, HttpError::BadUrl { .. }), "{url}: {e:?}");
    }
}
