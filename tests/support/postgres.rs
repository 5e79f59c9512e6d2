//! A PostgreSQL server of our own (Debian `postgresql`), one per test
//! that needs it, with a fresh database per replica set.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{free_port, run, wait_for_port, TempDir};

/// A PostgreSQL 15 server of our own.
pub struct Postgres {
    dir: TempDir,
    /// Its URL.
    pub url: String,
    bin: PathBuf,
}

fn pg_bin() -> PathBuf {
    for v in ["17", "16", "15", "14"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if p.join("initdb").exists() {
            return p;
        }
    }
    panic!("PostgreSQL server binaries not found under /usr/lib/postgresql (scripts/test installs postgresql)");
}

fn as_postgres(cmd: &str) -> Command {
    // initdb refuses to run as root: run the server as the postgres user.
    let mut c = if unsafe_is_root() {
        Command::new("runuser")
    } else {
        Command::new("sh")
    };
    if unsafe_is_root() {
        c.args(["-u", "postgres", "--", "sh", "-c", cmd]);
    } else {
        c.args(["-c", cmd]);
    }
    c
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

impl Postgres {
    /// Starts one (about a second).
    pub fn start() -> Postgres {
        let bin = pg_bin();
        let dir = TempDir::new("pg");
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir_all(&sock).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        run(
            &mut as_postgres(&format!(
                "{}/initdb -D {} -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 -N >/dev/null",
                bin.display(),
                data.display()
            )),
            "initdb",
        );
        let port = free_port();
        run(
            &mut as_postgres(&format!(
                "{}/pg_ctl -D {} -l {}/log -w -o \"-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=200\" start >/dev/null",
                bin.display(),
                data.display(),
                dir.path().display(),
                sock.display()
            )),
            "pg_ctl start",
        );
        wait_for_port(port, "postgres");
        Postgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            bin,
        }
    }

    /// A fresh empty database on this server.
    pub fn fresh_database(&self, name: &str) -> String {
        let port = self
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        run(
            Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    port,
                    "-U",
                    "postgres",
                    "-c",
                    &format!("CREATE DATABASE {name}"),
                ])
                .stdout(Stdio::null()),
            "createdb",
        );
        format!("postgres://postgres@127.0.0.1:{port}/{name}")
    }

    /// Every row of the database at `url`, as `pg_dump` writes it.
    pub fn dump(&self, url: &str) -> Vec<u8> {
        let out = Command::new(self.bin.join("pg_dump"))
            .arg(url)
            .output()
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&format!(
            "{}/pg_ctl -D {}/data -m immediate stop >/dev/null 2>&1",
            self.bin.display(),
            self.dir.path().display()
        ))
        .status();
    }
}
