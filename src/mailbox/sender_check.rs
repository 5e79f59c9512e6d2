//! huytk's own check of who sent a mail (`[sender_auth] check =
//! "resolver"`, docs/sender-auth.md): DKIM, SPF and DMARC with Stalwart's
//! `mail-auth` and a configured DNS server, at ingest.
//!
//! This is I/O (DNS), so it lives on the mailbox side, behind
//! [`SenderCheck`]; intake stays pure. The check yields results as an
//! `Authentication-Results` header would carry them ([`ResInfo`]), and
//! [`crate::intake::auth::from_results`] turns them into the same
//! [`crate::intake::auth::SenderAuth`] the trusted-header way gives: same
//! stored evidence, badges and warnings.
//!
//! A DNS outage delays nothing: each query is bounded by the resolver's
//! timeout and attempts, the whole check by `check_timeout_ms`; what did
//! not answer is `temperror`, and the mail goes on.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;
use mail_auth::hickory_resolver::config::{
    NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DkimResult, DmarcResult, MessageAuthenticator, SpfOutput,
    SpfResult,
};

use crate::config::SenderAuthConfig;
use crate::intake::auth::{Outcome, ResInfo};

/// The authserv-id huytk's own results are stored under.
pub const AUTHSERV_ID: &str = "huytk";

/// Why the check could not be set up (at start-up: a misconfiguration).
#[derive(Debug, thiserror::Error)]
pub enum SenderCheckError {
    /// `resolver` is not `IP` or `IP:port`.
    #[error("[sender_auth] resolver {0:?}: not an IP address or IP:port")]
    Resolver(String),
    /// `check = "resolver"` without a `trusted_received_by`.
    #[error("[sender_auth] check = \"resolver\" needs trusted_received_by (the desk's receiving servers' names)")]
    NoTrustedReceived,
    /// The DNS client could not be built.
    #[error("[sender_auth] DNS client: {0}")]
    Dns(String),
}

/// Checks a raw mail's sender: the results it found, as a receiving
/// server would write them. Never fails: what could not be checked is
/// `temperror` (DNS) or `permerror` (a broken mail or record).
pub trait SenderCheck: Send + Sync + std::fmt::Debug {
    /// The results for this raw mail.
    fn check<'a>(&'a self, raw: &'a [u8]) -> BoxFuture<'a, Vec<ResInfo>>;
}

/// The SMTP client of a mail, as the desk's receiving server recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpClient {
    /// The client's IP address (`[…]` in the `from` clause).
    pub ip: IpAddr,
    /// The name it gave in HELO/EHLO.
    pub helo: String,
}

/// The check with `mail-auth` against a configured DNS server.
pub struct ResolverCheck {
    authenticator: MessageAuthenticator,
    trusted_received_by: Vec<String>,
    total: Duration,
}

impl std::fmt::Debug for ResolverCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolverCheck")
            .field("trusted_received_by", &self.trusted_received_by)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// `IP` or `IP:port` (`[v6]:port`), port 53 by default.
fn socket_addr(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

impl ResolverCheck {
    /// The check `[sender_auth]` asks for: `None` with `check = "headers"`.
    pub fn from_config(c: &SenderAuthConfig) -> Result<Option<ResolverCheck>, SenderCheckError> {
        if !c.uses_resolver() {
            return Ok(None);
        }
        let addr = socket_addr(&c.resolver)
            .ok_or_else(|| SenderCheckError::Resolver(c.resolver.clone()))?;
        let names: Vec<String> = c
            .trusted_received_by
            .iter()
            .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return Err(SenderCheckError::NoTrustedReceived);
        }
        ResolverCheck::new(
            addr,
            Duration::from_millis(c.resolver_timeout_ms.max(1)),
            c.resolver_attempts.max(1) as usize,
            Duration::from_millis(c.check_timeout_ms.max(1)),
            names,
        )
        .map(Some)
    }

    /// A check asking only `addr` (UDP, TCP for truncated answers), each
    /// query waiting `timeout` and sent `attempts` times, the whole check
    /// of one mail capped at `total`.
    pub fn new(
        addr: SocketAddr,
        timeout: Duration,
        attempts: usize,
        total: Duration,
        trusted_received_by: Vec<String>,
    ) -> Result<ResolverCheck, SenderCheckError> {
        let config = ResolverConfig::from_parts(
            None,
            vec![],
            vec![
                NameServerConfig::new(addr, ProtocolConfig::Udp),
                NameServerConfig::new(addr, ProtocolConfig::Tcp),
            ],
        );
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = attempts;
        // Names are always fully qualified; never read /etc/hosts.
        opts.ndots = 0;
        let authenticator = MessageAuthenticator::new(config, opts)
            .map_err(|e| SenderCheckError::Dns(e.to_string()))?;
        Ok(ResolverCheck {
            authenticator,
            trusted_received_by,
            total,
        })
    }

    async fn check_all(&self, raw: &[u8]) -> Vec<ResInfo> {
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return vec![result(
                "dmarc",
                Outcome::PermError,
                Some("unreadable message"),
                vec![],
            )];
        };
        let client = smtp_client(raw, &self.trusted_received_by);
        let mail_from = return_path(raw).unwrap_or_default();
        let host = self.trusted_received_by[0].as_str();

        let dkim = self.authenticator.verify_dkim(&message).await;
        let spf = match &client {
            Some(c) if mail_from.is_empty() => Some(
                self.authenticator
                    .verify_spf(mail_auth::spf::verify::SpfParameters::verify_ehlo(
                        c.ip, &c.helo, host,
                    ))
                    .await,
            ),
            Some(c) => Some(
                self.authenticator
                    .verify_spf(mail_auth::spf::verify::SpfParameters::verify_mail_from(
                        c.ip, &c.helo, host, &mail_from,
                    ))
                    .await,
            ),
            None => None,
        };
        let mail_from_domain = match mail_from.rsplit_once('@') {
            Some((_, d)) => d.to_owned(),
            None => client.as_ref().map(|c| c.helo.clone()).unwrap_or_default(),
        };
        // No trusted Received line: SPF has nothing to check, and DMARC
        // weighs it as `none`.
        let spf_for_dmarc = spf.clone().unwrap_or_else(|| none_spf(&mail_from_domain));
        let dmarc = self
            .authenticator
            .verify_dmarc(
                mail_auth::dmarc::verify::DmarcParameters::new(
                    &message,
                    &dkim,
                    &mail_from_domain,
                    &spf_for_dmarc,
                )
                .with_domain_suffix_fn(organisational_suffix),
            )
            .await;

        let mut out = dkim_results(&dkim);
        out.push(match (&spf, &client) {
            (Some(s), Some(c)) => spf_result(s, &mail_from, &c.helo),
            _ => result(
                "spf",
                Outcome::None,
                Some("no Received line of a trusted server"),
                vec![],
            ),
        });
        let dns_failed = spf_for_dmarc.result() == SpfResult::TempError
            || dkim
                .iter()
                .any(|d| matches!(d.result(), DkimResult::TempError(_)));
        let (outcome, reason) = dmarc_outcome(
            dmarc.spf_result(),
            dmarc.dkim_result(),
            dmarc.dmarc_record().is_some(),
            dns_failed,
        );
        let mut props = vec![("header.from".to_owned(), dmarc.domain().to_owned())];
        if dmarc.dmarc_record().is_some() {
            props.push(("policy.dmarc".to_owned(), dmarc.policy().to_string()));
        }
        out.push(result("dmarc", outcome, reason.as_deref(), props));
        out
    }
}

/// What the check says when the whole of it ran out of time.
fn timed_out(total: Duration) -> Vec<ResInfo> {
    let why = format!("DNS did not answer within {} ms", total.as_millis());
    ["dkim", "spf", "dmarc"]
        .into_iter()
        .map(|m| result(m, Outcome::TempError, Some(&why), vec![]))
        .collect()
}

impl SenderCheck for ResolverCheck {
    fn check<'a>(&'a self, raw: &'a [u8]) -> BoxFuture<'a, Vec<ResInfo>> {
        Box::pin(async move {
            match tokio::time::timeout(self.total, self.check_all(raw)).await {
                Ok(results) => results,
                Err(_) => timed_out(self.total),
            }
        })
    }
}

fn result(
    method: &str,
    result: Outcome,
    reason: Option<&str>,
    props: Vec<(String, String)>,
) -> ResInfo {
    ResInfo {
        method: method.to_owned(),
        result,
        reason: reason.map(str::to_owned),
        properties: props,
        comments: vec![],
    }
}

fn none_spf(domain: &str) -> SpfOutput {
    SpfOutput::new(domain.to_owned()).with_result(SpfResult::None)
}

fn dkim_results(dkim: &[DkimOutput<'_>]) -> Vec<ResInfo> {
    if dkim.is_empty() {
        return vec![result("dkim", Outcome::None, Some("no signature"), vec![])];
    }
    dkim.iter()
        .map(|d| {
            let (outcome, reason) = match d.result() {
                DkimResult::Pass => (Outcome::Pass, None),
                DkimResult::Neutral(e) => (Outcome::Neutral, Some(e.to_string())),
                DkimResult::Fail(e) => (Outcome::Fail, Some(e.to_string())),
                DkimResult::PermError(e) => (Outcome::PermError, Some(e.to_string())),
                DkimResult::TempError(e) => (Outcome::TempError, Some(e.to_string())),
                DkimResult::None => (Outcome::None, None),
            };
            let mut props = Vec::new();
            if let Some(s) = d.signature() {
                props.push(("header.d".to_owned(), s.d.clone()));
                props.push(("header.s".to_owned(), s.s.clone()));
                if !s.i.is_empty() {
                    props.push(("header.i".to_owned(), s.i.clone()));
                }
            }
            result("dkim", outcome, reason.as_deref(), props)
        })
        .collect()
}

fn spf_result(s: &SpfOutput, mail_from: &str, helo: &str) -> ResInfo {
    let outcome = match s.result() {
        SpfResult::Pass => Outcome::Pass,
        SpfResult::Fail => Outcome::Fail,
        SpfResult::SoftFail => Outcome::SoftFail,
        SpfResult::Neutral => Outcome::Neutral,
        SpfResult::TempError => Outcome::TempError,
        SpfResult::PermError => Outcome::PermError,
        SpfResult::None => Outcome::None,
    };
    let props = if mail_from.is_empty() {
        vec![("smtp.helo".to_owned(), helo.to_owned())]
    } else {
        vec![("smtp.mailfrom".to_owned(), mail_from.to_owned())]
    };
    result("spf", outcome, s.explanation(), props)
}

/// DMARC's result from its SPF and DKIM halves (RFC 7489 section 6.6.2):
/// an aligned pass of either passes. The From domain has a record and
/// nothing aligned passed: `fail`, unless a lookup of SPF or a DKIM key
/// failed for DNS (`temperror`: an outage is never a forgery).
/// `mail-auth` leaves both halves `none` when neither SPF nor DKIM passed
/// at all, which is a fail under a record. No record: what the record's
/// lookup gave (`none`, or its DNS error).
fn dmarc_outcome(
    spf: &DmarcResult,
    dkim: &DmarcResult,
    has_record: bool,
    dns_failed: bool,
) -> (Outcome, Option<String>) {
    let one = |r: &DmarcResult| match r {
        DmarcResult::Pass => (Outcome::Pass, None),
        DmarcResult::Fail(e) => (Outcome::Fail, Some(e.to_string())),
        DmarcResult::TempError(e) => (Outcome::TempError, Some(e.to_string())),
        DmarcResult::PermError(e) => (Outcome::PermError, Some(e.to_string())),
        DmarcResult::None => (Outcome::None, None),
    };
    if *spf == DmarcResult::Pass || *dkim == DmarcResult::Pass {
        (Outcome::Pass, None)
    } else if has_record && dns_failed {
        (
            Outcome::TempError,
            Some("a DNS lookup of SPF or a DKIM key failed".into()),
        )
    } else if has_record {
        (Outcome::Fail, Some("no aligned SPF or DKIM pass".into()))
    } else if *spf != DmarcResult::None {
        one(spf)
    } else {
        one(dkim)
    }
}

/// The organisational domain as a suffix of `domain`, by the same Public
/// Suffix List the trusted-header way aligns with
/// ([`crate::intake::auth::organisational_domain`]), so both ways agree.
fn organisational_suffix(domain: &str) -> &str {
    let org = crate::intake::auth::organisational_domain(domain);
    let d = domain.trim_end_matches('.');
    if org.len() <= d.len() && d[d.len() - org.len()..].eq_ignore_ascii_case(&org) {
        &d[d.len() - org.len()..]
    } else {
        d
    }
}

/// The envelope sender from the topmost `Return-Path` (written at final
/// delivery); empty for the null sender `<>` or none.
fn return_path(raw: &[u8]) -> Option<String> {
    let (_, v) = crate::intake::auth::header_fields(raw)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("return-path"))?;
    let v = v.trim().trim_start_matches('<');
    let v = v.split('>').next().unwrap_or("").trim();
    Some(v.to_owned())
}

/// The word after `key` (`from`, `by`) in a `Received` value, outside
/// comments.
fn clause<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    let i = words.iter().position(|w| w.eq_ignore_ascii_case(key))?;
    words.get(i + 1).copied()
}

/// The SMTP client from the topmost `Received` line written by one of the
/// desk's receiving servers (`by` one of `trusted`): `from HELO (rdns
/// [IP]) by mx…`. A line whose `from` is itself a trusted server is a hop
/// inside the desk (a content filter re-injecting): the next one down is
/// read. Pure.
pub fn smtp_client(raw: &[u8], trusted: &[String]) -> Option<SmtpClient> {
    let is_trusted = |name: &str| {
        let n = name.trim_end_matches('.').to_ascii_lowercase();
        trusted.contains(&n)
    };
    for (name, value) in crate::intake::auth::header_fields(raw) {
        if !name.eq_ignore_ascii_case("received") {
            continue;
        }
        // The words outside comments, and the first comment (the TCP info).
        let mut words = String::new();
        let mut first_comment: Option<String> = None;
        let mut depth = 0usize;
        let mut comment = String::new();
        for ch in value.split(';').next().unwrap_or("").chars() {
            match ch {
                '(' => {
                    depth += 1;
                    if depth == 1 {
                        comment.clear();
                        words.push(' ');
                        continue;
                    }
                }
                ')' if depth > 0 => {
                    depth -= 1;
                    if depth == 0 {
                        first_comment.get_or_insert_with(|| comment.clone());
                        continue;
                    }
                }
                _ => {}
            }
            if depth > 0 {
                comment.push(ch);
            } else {
                words.push(ch);
            }
        }
        let words: Vec<&str> = words.split_whitespace().collect();
        let Some(by) = clause(&words, "by") else {
            continue;
        };
        if !is_trusted(by) {
            continue;
        }
        let Some(helo) = clause(&words, "from") else {
            // Written by a trusted server for a local submission: no client.
            return None;
        };
        if is_trusted(helo) {
            continue;
        }
        let ip = first_comment.as_deref().and_then(|c| {
            let open = c.find('[')?;
            let close = c[open..].find(']')? + open;
            let inner = &c[open + 1..close];
            let inner = inner
                .strip_prefix("IPv6:")
                .or_else(|| inner.strip_prefix("ipv6:"))
                .unwrap_or(inner);
            inner.parse::<IpAddr>().ok()
        })?;
        return Some(SmtpClient {
            ip,
            helo: helo.trim_end_matches('.').to_owned(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> Vec<String> {
        vec!["mx.desk.test".to_owned()]
    }

    #[test]
    fn the_client_is_read_from_the_trusted_received_line_only() {
        let raw = b"Return-Path: <an@citizen.test>\r\n\
Received: from mx.desk.test by imap.desk.test (Dovecot) with LMTP id x; Tue, 1 Dec 2026 10:00:00 +0000\r\n\
Received: from sender.citizen.test (localhost [127.0.0.2])\r\n\tby mx.desk.test (Postfix) with ESMTP id ABC\r\n\tfor <desk@test>; Tue, 1 Dec 2026 10:00:00 +0000\r\n\
Received: from forged.example ([10.9.9.9]) by mx.desk.test; Tue, 1 Dec 2026 09:00:00 +0000\r\n\
From: an@citizen.test\r\n\r\nbody\r\n";
        assert_eq!(
            smtp_client(raw, &trusted()),
            Some(SmtpClient {
                ip: "127.0.0.2".parse().unwrap(),
                helo: "sender.citizen.test".into()
            })
        );
        assert_eq!(return_path(raw).as_deref(), Some("an@citizen.test"));
        // No line of a trusted server: no client.
        assert_eq!(smtp_client(raw, &["mx.other.test".to_owned()]), None);
    }

    #[test]
    fn a_hop_inside_the_desk_is_skipped_and_ipv6_is_read() {
        let raw = b"Received: from mx.desk.test (localhost [127.0.0.1]) by mx.desk.test (Postfix) with ESMTP id 2\r\n\
Received: from mail.example.vn (mail.example.vn [IPv6:2001:db8::25]) by MX.desk.test (Postfix) with ESMTPS id 1\r\n\r\n";
        let c = smtp_client(raw, &trusted()).unwrap();
        assert_eq!(c.ip, "2001:db8::25".parse::<IpAddr>().unwrap());
        assert_eq!(c.helo, "mail.example.vn");
    }

    #[test]
    fn addresses_and_org_suffix() {
        assert_eq!(
            socket_addr("127.0.0.1"),
            Some("127.0.0.1:53".parse().unwrap())
        );
        assert_eq!(
            socket_addr("127.0.0.1:5353"),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            socket_addr("[::1]:5353"),
            Some("[::1]:5353".parse().unwrap())
        );
        assert_eq!(socket_addr("dns.example"), None);
        assert_eq!(organisational_suffix("mail.congty.com.vn"), "congty.com.vn");
        assert_eq!(organisational_suffix("a.b.citizen.test"), "citizen.test");
    }

    #[test]
    fn dmarc_passes_on_either_half_and_an_outage_is_temperror() {
        use mail_auth::Error;
        let fail = DmarcResult::Fail(Error::NotAligned);
        let none = DmarcResult::None;
        assert_eq!(
            dmarc_outcome(&fail, &DmarcResult::Pass, true, false).0,
            Outcome::Pass
        );
        assert_eq!(dmarc_outcome(&fail, &fail, true, false).0, Outcome::Fail);
        // Nothing passed at all under a record: fail, not none.
        assert_eq!(dmarc_outcome(&none, &none, true, false).0, Outcome::Fail);
        assert_eq!(
            dmarc_outcome(&none, &none, true, true).0,
            Outcome::TempError
        );
        assert_eq!(dmarc_outcome(&none, &none, false, false).0, Outcome::None);
        let temp = DmarcResult::TempError(Error::DnsError("timeout".into()));
        assert_eq!(
            dmarc_outcome(&temp, &temp, false, false).0,
            Outcome::TempError
        );
        let t = timed_out(Duration::from_millis(300));
        assert!(t.iter().all(|r| r.result == Outcome::TempError));
        let auth = crate::intake::auth::from_results(&t, Some("an@citizen.test"), AUTHSERV_ID);
        assert_eq!(auth.verdict, crate::intake::auth::AuthVerdict::Yellow);
    }

    #[test]
    fn the_config_asks_for_what_the_check_needs() {
        let mut c = SenderAuthConfig::default();
        assert!(ResolverCheck::from_config(&c).unwrap().is_none());
        c.check = crate::config::SenderCheckWay::Resolver;
        c.resolver = "dns.example".into();
        assert!(matches!(
            ResolverCheck::from_config(&c),
            Err(SenderCheckError::Resolver(_))
        ));
        c.resolver = "127.0.0.1:5353".into();
        assert!(matches!(
            ResolverCheck::from_config(&c),
            Err(SenderCheckError::NoTrustedReceived)
        ));
        c.trusted_received_by = vec![" MX.Desk.Test. ".into()];
        let check = ResolverCheck::from_config(&c).unwrap().unwrap();
        assert_eq!(check.trusted_received_by, ["mx.desk.test"]);
        assert_eq!(check.total, Duration::from_millis(5000));
    }

    #[tokio::test]
    async fn a_dead_resolver_is_temperror_within_the_cap() {
        // A UDP port nobody answers on: every query times out.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let check = ResolverCheck::new(
            addr,
            Duration::from_millis(200),
            1,
            Duration::from_millis(700),
            trusted(),
        )
        .unwrap();
        let raw = b"Received: from sender.citizen.test (localhost [127.0.0.2]) by mx.desk.test (Postfix) with ESMTP id 1\r\n\
Return-Path: <an@citizen.test>\r\nFrom: an@citizen.test\r\nSubject: x\r\n\r\nbody\r\n";
        let start = std::time::Instant::now();
        let results = check.check(raw).await;
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{:?}",
            start.elapsed()
        );
        let dmarc = results.iter().find(|r| r.method == "dmarc").unwrap();
        assert_eq!(dmarc.result, Outcome::TempError, "{results:?}");
        drop(sock);
    }
}
