//! What sealing costs (issue: data at rest): per message at ingest (a data
//! key made and wrapped, the mail sealed) and per photo view (the data key
//! unwrapped, the mail opened), on the sample messages, in memory and
//! through a real SQLite store.
//!
//!     cargo bench --bench sealing [-- DIR]   (default: tests/corpus)

use std::path::PathBuf;
use std::time::Instant;

use huytk::store::sealed::{DataKey, MasterKey};

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"),
            PathBuf::from,
        );
    let mut messages: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    messages.sort_by_key(Vec::len);
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let n = messages.len();
    println!(
        "{n} messages from {}, {:.1} MB, largest {:.1} MB",
        dir.display(),
        bytes as f64 / 1e6,
        messages.last().map_or(0, Vec::len) as f64 / 1e6
    );

    // In memory: the cryptography alone.
    let master = MasterKey::generate();
    let rounds = 20;
    let start = Instant::now();
    let mut sealed = Vec::new();
    for _ in 0..rounds {
        sealed.clear();
        for (i, m) in messages.iter().enumerate() {
            let key = DataKey::generate();
            let wrapped = master.wrap(&key, &i.to_string());
            sealed.push((wrapped, key.seal(b"raw", m)));
        }
    }
    let seal = start.elapsed().as_secs_f64() / (rounds * n) as f64;
    let start = Instant::now();
    for _ in 0..rounds {
        for (i, (wrapped, s)) in sealed.iter().enumerate() {
            let key = master.unwrap(wrapped, &i.to_string()).unwrap();
            std::hint::black_box(key.open(b"raw", s).unwrap());
        }
    }
    let open = start.elapsed().as_secs_f64() / (rounds * n) as f64;
    let mbps = |per: f64| bytes as f64 / n as f64 / per / 1e6;
    println!(
        "memory: seal {:.0} µs/message ({:.0} MB/s), open {:.0} µs/message ({:.0} MB/s)",
        seal * 1e6,
        mbps(seal),
        open * 1e6,
        mbps(open)
    );

    // Through the store: what ingest (put_raw) and a view (raw) take.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("huytk-bench-sealing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("sqlite://{}/b.db", dir.display());
        let (store, _) = huytk::store::Store::connect(&url)
            .await
            .unwrap()
            .unlock(&huytk::store::keys::KeySource::File(dir.join("master.key")))
            .await
            .unwrap();
        let shas: Vec<String> = messages
            .iter()
            .map(|m| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(m)))
            .collect();
        let start = Instant::now();
        for (m, sha) in messages.iter().zip(&shas) {
            store
                .put_raw(sha, m, "bench", None, None, None)
                .await
                .unwrap();
        }
        let put = start.elapsed().as_secs_f64() / n as f64;
        let start = Instant::now();
        for sha in &shas {
            std::hint::black_box(store.raw(sha).await.unwrap());
        }
        let view = start.elapsed().as_secs_f64() / n as f64;
        println!(
            "store (SQLite): ingest put_raw {:.2} ms/message, view raw {:.2} ms/message; \
             of which sealing {:.0}% and opening {:.0}%",
            put * 1e3,
            view * 1e3,
            100.0 * seal / put,
            100.0 * open / view
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}
