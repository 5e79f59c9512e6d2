//! Every message of the corpora gets the report its `.expected.json` says.
//!
//! `tests/corpus/` is ours (made by `scripts/gen_corpus.py tests`, covering
//! every problem and warning code, encoding, subject shape and attachment
//! type); `tests/corpus/shared/` holds the desk's own samples.

use huytk::intake::auth::TrustedServers;
use huytk::intake::{try_inspect_trusting, InspectOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn messages(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    v.sort();
    v
}

/// Compares a report with its expectation; returns the differences.
fn differences(report: &Value, expected: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let codes = |key: &str| -> Vec<String> {
        report[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (problems, warnings) = (codes("problems"), codes("warnings"));
    for (key, want) in expected.as_object().expect("expectation is an object") {
        match key.as_str() {
            "problems" | "warnings" => {
                let have = if key == "problems" {
                    &problems
                } else {
                    &warnings
                };
                // Exactly these codes, whatever their order: an expected
                // empty list means none may be reported.
                let mut want: Vec<&str> = want
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                let mut have: Vec<&str> = have.iter().map(String::as_str).collect();
                want.sort_unstable();
                have.sort_unstable();
                if have != want {
                    bad.push(format!("{key} {have:?} != {want:?}"));
                }
            }
            "absent" => {
                for c in want.as_array().unwrap() {
                    let c = c.as_str().unwrap();
                    if problems.iter().chain(&warnings).any(|h| h == c) {
                        bad.push(format!("{c} is reported but must not be"));
                    }
                }
            }
            "auth" => {
                for (k, v) in want.as_object().unwrap() {
                    if report["auth"][k] != *v {
                        bad.push(format!("auth.{k}: {} != {v}", report["auth"][k]));
                    }
                }
            }
            "qr" => {
                for (k, v) in want.as_object().unwrap() {
                    if report["qr"][k] != *v {
                        bad.push(format!("qr.{k}: {} != {v}", report["qr"][k]));
                    }
                }
            }
            "roles" => {
                let roles: Vec<&Value> = report["attachments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| &a["role"])
                    .collect();
                let want: Vec<&Value> = want.as_array().unwrap().iter().collect();
                if roles != want {
                    bad.push(format!("roles {roles:?} != {want:?}"));
                }
            }
            "attachments_0" => {
                for (k, v) in want.as_object().unwrap() {
                    if report["attachments"][0][k] != *v {
                        bad.push(format!(
                            "attachments[0].{k}: {} != {v}",
                            report["attachments"][0][k]
                        ));
                    }
                }
            }
            _ => {
                if report[key] != *want {
                    bad.push(format!("{key}: {} != {want}", report[key]));
                }
            }
        }
    }
    bad
}

fn check_corpus(dir: &Path, at_least: usize) {
    check_corpus_trusting(dir, at_least, None);
}

fn check_corpus_trusting(dir: &Path, at_least: usize, trusted: Option<&TrustedServers>) {
    let opts = InspectOptions { current_year: 2026 };
    let files = messages(dir);
    assert!(
        files.len() >= at_least,
        "{} has {} messages",
        dir.display(),
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        let exp_path = f.with_extension("expected.json");
        let expected: Value = serde_json::from_slice(&std::fs::read(&exp_path).unwrap()).unwrap();
        // A message refused whole (nesting bomb, part flood) expects
        // `{"error": "<part of the reason>"}`, as `huytk inspect --json`
        // prints it.
        let report = try_inspect_trusting(&raw, Some(&f.to_string_lossy()), &opts, trusted);
        if let (Ok(r), None) = (&report, trusted) {
            let v = serde_json::to_value(r).unwrap();
            assert!(v.get("auth").is_none(), "{}", f.display());
        }
        let bad = match (report, &expected["error"]) {
            (Err(refused), Value::String(want)) if refused.to_string().contains(want.as_str()) => {
                Vec::new()
            }
            (Err(refused), _) => vec![format!("refused: {refused}")],
            (Ok(_), Value::String(want)) => {
                vec![format!("inspected, but must be refused ({want})")]
            }
            (Ok(report), _) => differences(&serde_json::to_value(report).unwrap(), &expected),
        };
        if !bad.is_empty() {
            failures.push(format!("{}:\n    {}", f.display(), bad.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn our_corpus_matches_expectations() {
    let dir = std::env::var_os("HUYTK_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"));
    check_corpus(&dir, 40);
}

#[test]
fn shared_samples_match_expectations() {
    check_corpus(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/shared"),
        16,
    );
}

/// tests/corpus-auth/: hand-written mail as Gmail, Microsoft 365, Yahoo
/// and Postfix with OpenDKIM and OpenDMARC deliver it, forgeries, and an
/// untrusted authserv-id, read the trusted-header way.
const AUTH_CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus-auth");

#[test]
fn trusted_authentication_results_are_read_as_the_providers_wrote_them() {
    let trusted = TrustedServers::new(
        &[
            "mx.google.com",
            "mx.dichvucong.gov.vn",
            "atlas313.free.mail.ne1.yahoo.com",
        ],
        true,
    )
    .unwrap();
    check_corpus_trusting(Path::new(AUTH_CORPUS), 7, Some(&trusted));
}

#[test]
fn the_same_headers_are_ignored_when_their_authserv_id_is_not_trusted() {
    let trusted = TrustedServers::new(&["mx.example.org"], false).unwrap();
    let opts = InspectOptions { current_year: 2026 };
    for f in messages(Path::new(AUTH_CORPUS)) {
        let raw = std::fs::read(&f).unwrap();
        let r = try_inspect_trusting(&raw, None, &opts, Some(&trusted)).unwrap();
        let auth = r.auth.unwrap();
        assert_eq!(auth.verdict.as_str(), "yellow", "{}", f.display());
        assert!(auth.dmarc.is_none() && auth.dkim.is_empty() && auth.spf.is_none());
        assert!(auth.ignored >= 1, "{}", f.display());
        assert!(!r
            .assessment
            .warnings
            .contains(&huytk::intake::Warning::SenderUnauthenticated));
    }
}

#[test]
fn every_code_is_exercised_by_our_corpus() {
    // The corpus must raise every problem and warning code somewhere
    // (sender_mismatch needs a follow-up: see `followups_are_judged_together`;
    // the sender's authentication needs trusted servers: tests/corpus-auth,
    // and the follow-up case is src/intake/auth/tests.rs).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut seen = std::collections::BTreeSet::new();
    for f in messages(&dir) {
        let e: Value =
            serde_json::from_slice(&std::fs::read(f.with_extension("expected.json")).unwrap())
                .unwrap();
        for key in ["problems", "warnings"] {
            for c in e[key].as_array().into_iter().flatten() {
                seen.insert(c.as_str().unwrap().to_owned());
            }
        }
    }
    for p in huytk::intake::Problem::ALL {
        assert!(seen.contains(p.code()), "no message raises {}", p.code());
    }
    use huytk::intake::Warning;
    for w in Warning::ALL {
        if !matches!(
            w,
            Warning::SenderMismatch
                | Warning::SenderUnauthenticated
                | Warning::FollowupUnauthenticated
        ) {
            assert!(seen.contains(w.code()), "no message raises {}", w.code());
        }
    }
}

#[test]
fn followups_are_judged_together() {
    // Each `NAME.N.eml` series is one request: the first message and its
    // follow-ups, judged together as the daemon will.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/followups");
    let opts = InspectOptions { current_year: 2026 };
    let mut names: Vec<String> = messages(&dir)
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.split('.').next().map(String::from))
        .collect();
    names.dedup();
    assert!(names.len() >= 3, "follow-up series: {names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let examined: Vec<_> = (1..)
            .map(|i| dir.join(format!("{name}.{i}.eml")))
            .take_while(|p| p.exists())
            .map(|p| huytk::intake::examine(&std::fs::read(p).unwrap()))
            .collect();
        let refs: Vec<_> = examined.iter().collect();
        let report = serde_json::to_value(huytk::intake::assess(&refs, &opts)).unwrap();
        let expected: Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        let bad = differences(&report, &expected);
        if !bad.is_empty() {
            failures.push(format!("{name}:\n    {}", bad.join("\n    ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
