//! A wall clock the test sets, for the daemon: `huytk serve` runs under
//! libfaketime (Debian `faketime`, in `scripts/deps.sh`) reading its time
//! from a file this side rewrites. The clock stands still where it is set,
//! so a test says exactly what instant the desk lives at; the monotonic
//! clock is left alone, so the daemon's timers still tick in real time.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::TempDir;

/// The preload library; its thread-safe build, as the daemon is threaded.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// A stopped wall clock for a daemon, moved with [`FakeClock::set`].
pub struct FakeClock {
    dir: TempDir,
    at: std::cell::Cell<i64>,
}

impl FakeClock {
    /// A clock standing at `ms` (milliseconds since the epoch, a whole
    /// second: libfaketime's absolute times have no fraction).
    pub fn at(ms: i64) -> FakeClock {
        assert!(
            Path::new(LIBFAKETIME).exists(),
            "{LIBFAKETIME} is missing (Debian faketime; scripts/test installs it)"
        );
        let c = FakeClock {
            dir: TempDir::new("clock"),
            at: std::cell::Cell::new(ms),
        };
        c.set(ms);
        c
    }

    /// Moves the clock to `ms`; a daemon on it reads the new time at once.
    pub fn set(&self, ms: i64) {
        assert_eq!(ms % 1000, 0, "libfaketime sets whole seconds");
        let t = chrono::DateTime::from_timestamp_millis(ms).expect("a valid instant");
        // Written whole then renamed, so the daemon never reads half a line.
        let tmp = self.dir.path().join("faketime.tmp");
        std::fs::write(&tmp, format!("{}\n", t.format("%Y-%m-%d %H:%M:%S"))).unwrap();
        std::fs::rename(&tmp, self.file()).unwrap();
        self.at.set(ms);
    }

    /// Where the clock stands.
    pub fn now_ms(&self) -> i64 {
        self.at.get()
    }

    /// The file libfaketime reads the time from.
    pub fn file(&self) -> PathBuf {
        self.dir.path().join("faketime.rc")
    }

    /// Puts `cmd` on this clock. The file is read on every call of the
    /// clock (no cache); the absolute time is read as UTC (`TZ`); a
    /// `FAKETIME` inherited from a run at another hour (scripts/test) would
    /// win over the file, so it is removed.
    pub fn apply(&self, cmd: &mut Command) {
        apply_clock_file(&self.file(), cmd);
    }
}

/// [`FakeClock::apply`] for the clock whose file is `file`.
pub fn apply_clock_file(file: &Path, cmd: &mut Command) {
    cmd.env("LD_PRELOAD", LIBFAKETIME)
        .env_remove("FAKETIME")
        .env("FAKETIME_TIMESTAMP_FILE", file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("TZ", "UTC");
}
