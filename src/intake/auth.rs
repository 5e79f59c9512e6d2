//! Who sent a mail, as the receiving server judged it: the DKIM, SPF and
//! DMARC results of trusted `Authentication-Results` headers (RFC 8601).
//!
//! Pure: bytes in, [`SenderAuth`] out. Which headers count is the whole
//! point (see docs/sender-auth.md):
//!
//! - only headers whose authserv-id is one the desk is configured to trust
//!   ([`TrustedServers`]); every other one is counted as ignored;
//! - only the topmost run of them: the first trusted header from the top
//!   starts it, and it ends at the first header that is neither an
//!   `Authentication-Results` of a trusted id nor one a receiver writes
//!   beside it (`Received-SPF`, `ARC-*`). The receiving server prepends its
//!   headers above everything the sender wrote, so a header further down
//!   (below the sender's first own header, or below the `Received` line of
//!   the hop before the receiver) is the sender's, whatever id it names;
//! - within the run, the topmost result of each method wins: a forged
//!   header directly below the receiver's cannot override what the receiver
//!   reported (and RFC 8601 section 5 has the receiver delete forgeries
//!   naming its own id).

use serde::{Deserialize, Serialize};

mod parse;
pub use parse::{parse_header, AuthservId, Outcome, ResInfo};

/// The authserv-ids whose `Authentication-Results` the desk believes:
/// the receiving servers of its own mailbox. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedServers {
    ids: Vec<String>,
    unnamed: bool,
}

impl TrustedServers {
    /// From the configured ids (compared without case) and whether a header
    /// without an authserv-id (Microsoft 365 writes none) is trusted.
    /// `None` when nothing is trusted: the trusted-header way is off.
    pub fn new<S: AsRef<str>>(ids: &[S], unnamed: bool) -> Option<TrustedServers> {
        let ids: Vec<String> = ids
            .iter()
            .map(|s| s.as_ref().trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        (!ids.is_empty() || unnamed).then_some(TrustedServers { ids, unnamed })
    }

    /// Whether a header of this authserv-id is believed.
    pub fn trusts(&self, id: &AuthservId) -> bool {
        match id {
            AuthservId::Named(n) => self.ids.iter().any(|t| t == n),
            AuthservId::Unnamed => self.unnamed,
        }
    }
}

/// Green, yellow or red, as the request page shows a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthVerdict {
    /// DMARC passed for the From domain.
    Green,
    /// Nothing decisive: no result, none, neutral, no policy, temperror.
    Yellow,
    /// DMARC failed, or the From domain has a policy and nothing aligned
    /// passed.
    Red,
}

impl AuthVerdict {
    /// `green`, `yellow` or `red`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthVerdict::Green => "green",
            AuthVerdict::Yellow => "yellow",
            AuthVerdict::Red => "red",
        }
    }
}

/// A DMARC policy (`p=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DmarcPolicy {
    /// `p=none`: monitor only.
    None,
    /// `p=quarantine`.
    Quarantine,
    /// `p=reject`.
    Reject,
}

impl DmarcPolicy {
    fn parse(s: &str) -> Option<DmarcPolicy> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(DmarcPolicy::None),
            "quarantine" => Some(DmarcPolicy::Quarantine),
            "reject" => Some(DmarcPolicy::Reject),
            _ => None,
        }
    }
}

/// One DKIM signature's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimCheck {
    /// The result as the server wrote it.
    pub result: Outcome,
    /// The signing domain (`header.d=`, else the domain of `header.i=`).
    pub domain: Option<String>,
    /// The selector (`header.s=`).
    pub selector: Option<String>,
    /// The signing domain is the From domain's organisational domain.
    pub aligned: bool,
}

/// The SPF result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpfCheck {
    /// The result as the server wrote it.
    pub result: Outcome,
    /// The domain of `smtp.mailfrom=` (else `smtp.helo=`).
    pub domain: Option<String>,
    /// That domain is the From domain's organisational domain.
    pub aligned: bool,
}

/// The DMARC result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmarcCheck {
    /// The result as the server wrote it.
    pub result: Outcome,
    /// The From domain's policy, when the server wrote it
    /// (`p=` in a comment, as Gmail, Yahoo and OpenDMARC do, or
    /// `policy.dmarc=`).
    pub policy: Option<DmarcPolicy>,
    /// `header.from=` as written.
    pub header_from: Option<String>,
    /// `header.from` is the message's From domain.
    pub aligned: bool,
}

/// What the trusted servers said about a mail's sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderAuth {
    /// Green, yellow or red.
    pub verdict: AuthVerdict,
    /// The authserv-ids of the headers read (none: no trusted header).
    pub authserv_ids: Vec<String>,
    /// The domain of the message's From address.
    pub from_domain: Option<String>,
    /// Each DKIM signature.
    pub dkim: Vec<DkimCheck>,
    /// SPF.
    pub spf: Option<SpfCheck>,
    /// DMARC.
    pub dmarc: Option<DmarcCheck>,
    /// `Authentication-Results` headers not believed (another id, or below
    /// the trusted run).
    pub ignored: usize,
}

/// The most header fields read: a stranger may send thousands.
const MAX_FIELDS: usize = 1000;

/// The header fields of a raw message, unfolded, top to bottom (the first
/// 1,000): what the trusted-header way reads, and the `Received`
/// and `Return-Path` lines huytk's own check takes the SMTP client from.
pub fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(String::from_utf8_lossy(line).trim());
            }
            continue;
        }
        if out.len() >= MAX_FIELDS {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon]).trim().to_owned();
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim()
            .to_owned();
        out.push((name, value));
    }
    out
}

/// Headers a receiver writes beside its `Authentication-Results`.
fn beside_results(name: &str) -> bool {
    name.eq_ignore_ascii_case("received-spf") || name.to_ascii_lowercase().starts_with("arc-")
}

/// Reads the trusted `Authentication-Results` of a raw message whose From
/// address is `from` (as intake read it) into the evidence and verdict.
pub fn read(raw: &[u8], from: Option<&str>, trusted: &TrustedServers) -> SenderAuth {
    let mut trusted_results: Vec<ResInfo> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut ignored = 0;
    // None: before the run; Some(true): in it; Some(false): past it.
    let mut run: Option<bool> = None;
    for (name, value) in header_fields(raw) {
        let is_ar = name.eq_ignore_ascii_case("authentication-results");
        if !is_ar {
            if run == Some(true) && !beside_results(&name) {
                run = Some(false);
            }
            continue;
        }
        let header = parse_header(&value);
        let believed = match &header {
            Some(h) if trusted.trusts(&h.authserv_id) && run != Some(false) => h,
            _ => {
                if run == Some(true) {
                    run = Some(false);
                }
                ignored += 1;
                continue;
            }
        };
        run = Some(true);
        let id = match &believed.authserv_id {
            AuthservId::Named(n) => n.clone(),
            AuthservId::Unnamed => String::new(),
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
        trusted_results.extend(believed.results.iter().cloned());
    }
    evidence(&trusted_results, from, ids, ignored)
}

/// The evidence from results that huytk's own check found
/// (`[sender_auth] check = "resolver"`, src/mailbox/sender_check.rs), as
/// `authserv_id` would have written them in an `Authentication-Results`
/// header: the same rules turn them into the same [`SenderAuth`] as the
/// trusted-header way, so storage, badges and warnings do not know which
/// way was used.
pub fn from_results(results: &[ResInfo], from: Option<&str>, authserv_id: &str) -> SenderAuth {
    evidence(results, from, vec![authserv_id.to_owned()], 0)
}

fn domain_of(value: &str) -> String {
    value
        .rsplit('@')
        .next()
        .unwrap_or(value)
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// The organisational domain (RFC 7489 section 3.2): the public suffix
/// of `domain` by the Public Suffix List (the `psl` crate, compiled in;
/// an unknown top-level label counts as a suffix) and one label more. A
/// domain that is itself a public suffix is its own organisational domain.
/// So `mail.bo.gov.vn` is `bo.gov.vn`, and two names under a shared
/// hosting suffix (`a.github.io`, `b.github.io`) are not aligned.
pub fn organisational_domain(domain: &str) -> String {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    match psl::domain_str(&d) {
        Some(org) => org.to_owned(),
        None => d,
    }
}

fn aligned(domain: Option<&str>, from_domain: Option<&str>) -> bool {
    match (domain, from_domain) {
        (Some(d), Some(f)) if !d.is_empty() && !f.is_empty() => {
            organisational_domain(d) == organisational_domain(f)
        }
        _ => false,
    }
}

fn evidence(
    results: &[ResInfo],
    from: Option<&str>,
    authserv_ids: Vec<String>,
    ignored: usize,
) -> SenderAuth {
    let from_domain = from.filter(|f| f.contains('@')).map(domain_of);
    let fd = from_domain.as_deref();
    let dkim: Vec<DkimCheck> = results
        .iter()
        .filter(|r| r.method == "dkim")
        .map(|r| {
            let domain = r
                .property("header.d")
                .map(domain_of)
                .or_else(|| r.property("header.i").map(domain_of))
                .filter(|d| !d.is_empty() && d != "none");
            DkimCheck {
                result: r.result,
                aligned: aligned(domain.as_deref(), fd),
                selector: r.property("header.s").map(str::to_owned),
                domain,
            }
        })
        .collect();
    // The topmost result of a method wins.
    let spf = results.iter().find(|r| r.method == "spf").map(|r| {
        let domain = r
            .property("smtp.mailfrom")
            .or_else(|| r.property("smtp.helo"))
            .map(domain_of)
            .filter(|d| !d.is_empty());
        SpfCheck {
            result: r.result,
            aligned: aligned(domain.as_deref(), fd),
            domain,
        }
    });
    let dmarc = results.iter().find(|r| r.method == "dmarc").map(|r| {
        let header_from = r.property("header.from").map(|h| h.to_ascii_lowercase());
        let policy = r
            .property("policy.dmarc")
            .or_else(|| r.comment_value("p"))
            .and_then(DmarcPolicy::parse);
        DmarcCheck {
            result: r.result,
            policy,
            aligned: aligned(header_from.as_deref(), fd),
            header_from,
        }
    });
    let aligned_pass = dkim.iter().any(|d| d.aligned && d.result == Outcome::Pass)
        || spf
            .as_ref()
            .is_some_and(|s| s.aligned && s.result == Outcome::Pass);
    let verdict = match &dmarc {
        Some(d) if d.result == Outcome::Fail => AuthVerdict::Red,
        Some(d) if d.result == Outcome::Pass && (d.aligned || aligned_pass) => AuthVerdict::Green,
        // A DNS outage is shown as such, never as a forgery.
        Some(d) if matches!(d.result, Outcome::TempError) => AuthVerdict::Yellow,
        Some(d) if d.policy.is_some() && !aligned_pass => AuthVerdict::Red,
        _ => AuthVerdict::Yellow,
    };
    SenderAuth {
        verdict,
        authserv_ids,
        from_domain,
        dkim,
        spf,
        dmarc,
        ignored,
    }
}

#[cfg(test)]
mod tests;
