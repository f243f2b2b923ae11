//! The functions' logs, captured in-process, and the leak scan: no secret
//! value may appear in a log line, a CloudFormation response or a function
//! process's output.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// The log lines of this test process (every test's), as the functions
/// write them: JSON, at TRACE for our code.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("TESTBED_ECHO_LOGS").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        log_buffer().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the functions' own log setup, at TRACE, writing into the buffer
/// the leak scan reads.
pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        cloudapps::logging::init_with_writer(
            || LogWriter,
            tracing::level_filters::LevelFilter::TRACE,
            true,
        );
    });
}

/// Fails when any secret value appears in any of `texts`.
pub fn assert_no_leak(secrets: &[String], texts: &[(&str, &str)]) {
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        for (name, text) in texts {
            assert!(
                !text.contains(secret.as_str()),
                "LEAK: a secret value appears in {name}"
            );
        }
    }
}
