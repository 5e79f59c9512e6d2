//! The house rules of docs/spec.md section 6, checked on the source: no
//! production file over 800 lines, the layers' imports one way (`notify`
//! and `accounts` use no `store`, `workflow` no `web`, `domain` and
//! `intake` no I/O), and no circle of imports between the files of one
//! folder. Test code (`#[cfg(test)]` modules and `tests.rs` files) is
//! left out: it may read fixtures from disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every production `.rs` file under `src/`, with its text up to its test
/// module.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let name = p.file_name().unwrap().to_string_lossy();
                if name == "tests.rs" || name.ends_with("_tests.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                let code = match text.find("#[cfg(test)]\nmod tests") {
                    Some(i) => text[..i].to_owned(),
                    None => text,
                };
                out.push((p, code));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    assert!(out.len() > 50, "only {} source files found", out.len());
    out
}

/// The path below `src/`, with `/` separators.
fn rel(p: &Path) -> String {
    p.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

/// The code without its comments (docs name other modules freely).
fn code_only(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_production_file_is_over_800_lines() {
    let long: Vec<String> = sources()
        .into_iter()
        .map(|(p, _)| {
            (
                rel(&p),
                std::fs::read_to_string(&p).unwrap().lines().count(),
            )
        })
        .filter(|(_, n)| *n > 800)
        .map(|(p, n)| format!("{p}: {n} lines"))
        .collect();
    assert!(long.is_empty(), "files over 800 lines: {long:?}");
}

#[test]
fn the_layers_import_one_way() {
    // (folder, what it must not name, why)
    let rules: [(&str, &[&str], &str); 5] = [
        ("notify/", &["crate::store"], "notify uses no store"),
        ("accounts/", &["crate::store"], "accounts uses no store"),
        (
            "workflow/",
            &["crate::web"],
            "workflow knows no web console",
        ),
        (
            "domain/",
            &[
                "std::fs",
                "std::net",
                "tokio",
                "sqlx",
                "std::process",
                "crate::store",
            ],
            "domain does no I/O",
        ),
        (
            "intake/",
            &[
                "std::fs",
                "std::net",
                "tokio",
                "sqlx",
                "std::process",
                "crate::store",
            ],
            "intake does no I/O",
        ),
    ];
    let mut broken = Vec::new();
    for (p, text) in sources() {
        let r = rel(&p);
        let code = code_only(&text);
        for (folder, banned, why) in &rules {
            if !r.starts_with(folder) {
                continue;
            }
            for b in *banned {
                if code.contains(b) {
                    broken.push(format!("{r} names {b}: {why}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn the_files_of_a_folder_import_each_other_without_a_circle() {
    // folder → file → the sibling files it imports through `super::`.
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let all = sources();
    for (p, text) in &all {
        let r = rel(p);
        let (folder, file) = match r.rsplit_once('/') {
            Some((f, n)) => (f.to_owned(), n.trim_end_matches(".rs").to_owned()),
            None => (String::new(), r.trim_end_matches(".rs").to_owned()),
        };
        let siblings: BTreeSet<String> = all
            .iter()
            .map(|(q, _)| rel(q))
            .filter_map(|q| {
                let (f, n) = q.rsplit_once('/').unwrap_or(("", q.as_str()));
                (f == folder).then(|| n.trim_end_matches(".rs").to_owned())
            })
            .collect();
        let code = code_only(text);
        let mut uses = BTreeSet::new();
        // A folder's mod.rs reaches its parent through `super::`, not
        // its own files.
        if file == "mod" {
            graph.entry(folder).or_default().insert(file, uses);
            continue;
        }
        for (i, _) in code.match_indices("super::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name != file && name != "mod" && siblings.contains(&name) {
                uses.insert(name);
            }
        }
        graph.entry(folder).or_default().insert(file, uses);
    }
    let mut circles = Vec::new();
    for (folder, files) in &graph {
        for start in files.keys() {
            // Depth-first from `start`: a path back to it is a circle.
            let mut stack = vec![(start.clone(), vec![start.clone()])];
            let mut seen = BTreeSet::new();
            while let Some((at, path)) = stack.pop() {
                for next in files.get(&at).into_iter().flatten() {
                    if next == start {
                        circles.push(format!("{folder}: {} → {start}", path.join(" → ")));
                    } else if seen.insert(next.clone()) {
                        let mut p = path.clone();
                        p.push(next.clone());
                        stack.push((next.clone(), p));
                    }
                }
            }
        }
    }
    circles.sort();
    circles.dedup();
    assert!(circles.is_empty(), "{circles:#?}");
}
