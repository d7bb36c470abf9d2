//! Cleanup watchdogs for the server fixtures. A watchdog is a shell in a session of its own that
//! waits for the test process to exit and then runs a cleanup command. It removes servers,
//! containers and folders even when the test process is killed and no `Drop` runs. `setsid`
//! keeps it alive through Ctrl-C in the terminal.

use std::path::Path;
use std::process::{Command, Stdio};

/// Starts a watchdog that runs `cleanup` with `sh` once this process has exited, without the
/// environment variables in `remove_env`. `leftovers` names what may stay behind, for the
/// warning printed when the watchdog cannot start.
pub(crate) fn spawn(cleanup: &str, remove_env: &[&str], leftovers: &str) {
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 0.2; done; {cleanup}",
        std::process::id()
    );
    let mut command = Command::new("setsid");
    command
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for name in remove_env {
        command.env_remove(name);
    }
    if let Err(err) = command.spawn() {
        eprintln!(
            "aether-testkit: failed to start the cleanup watchdog (setsid sh): {err}; a test \
             process that is killed may leave {leftovers} behind"
        );
    }
}

/// Quotes a path for `sh` in single quotes.
pub(crate) fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}
