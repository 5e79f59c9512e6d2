//! The log's writer: whatever a log line carries (a library's error
//! included), no citizen's address, ID number or phone reaches the log.

/// Writes log output with every email address and long number masked
/// (`domain::redact`): no citizen's address, ID number or phone reaches a
/// log, whichever line (a library's error included) carries it.
pub struct RedactingWriter<W: std::io::Write>(W, Vec<u8>);

impl<W: std::io::Write> RedactingWriter<W> {
    /// Masks what is written to `out`.
    pub fn new(out: W) -> Self {
        RedactingWriter(out, Vec::new())
    }
}

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // One writer per event: the whole line is masked at once on drop,
        // so a number is never split between two writes.
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: std::io::Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.1);
        let _ = self
            .0
            .write_all(crate::domain::redact::text(&text).as_bytes());
        let _ = self.0.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_line_is_masked_even_when_written_in_pieces() {
        let mut out = Vec::new();
        {
            let mut w = RedactingWriter::new(&mut out);
            w.write_all(b"SMTP: 550 <an.nguyen@gmail.com> rejected; cccd 0792030")
                .unwrap();
            w.write_all(b"01234\n").unwrap();
        }
        let line = String::from_utf8(out).unwrap();
        assert!(!line.contains("an.nguyen@gmail.com"), "{line}");
        assert!(!line.contains("079203001234"), "{line}");
        assert!(line.contains("…1234"), "{line}");
    }
}
