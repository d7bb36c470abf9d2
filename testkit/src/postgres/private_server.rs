//! A PostgreSQL server of its own for one test, for tests that restart the server or need
//! settings that the shared server at `DATABASE_URL` does not have, such as TLS.
//!
//! ```text
//! PrivateServer::start_with(options)
//!   ├─ temporary folder (mode 0711, so the server's user can reach its data folder)
//!   ├─ tls/: CA, server certificate and key made with openssl          (options.tls)
//!   ├─ pg_hba.conf written from options.hba                             (options.hba)
//!   └─ scripts/postgres.sh start, AETHER_PG_DIR = that folder ──▶ url(), data_dir()
//! restart(down_for) ──▶ scripts/postgres.sh restart
//! drop / stop() ──▶ scripts/postgres.sh stop, then SIGQUIT/SIGKILL by PID, then rm -r folder
//! ```
//!
//! The script installs the server when it is missing and runs it as the `postgres` system user
//! when the tests run as root. A watchdog process stops the server and removes its folder once
//! the test process exits, so a test process that is killed leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::certificates::{CertificateAuthority, CertifiedKey};
use crate::watchdog::shell_quote;

/// How long [`PrivateServer`]'s cleanup waits for the postmaster to exit after each signal.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between checks whether the postmaster still runs.
const EXIT_POLL: Duration = Duration::from_millis(50);

/// Settings of a [`PrivateServer`] beyond those of `scripts/postgres.sh start`.
#[derive(Debug, Clone, Default)]
pub struct PrivateServerOptions {
    /// Turns on TLS with a CA made for this server, a server certificate for `127.0.0.1` and
    /// `localhost`, and the same CA as `ssl_ca_file` for client certificates. Default: off.
    pub tls: bool,
    /// Replaces the script's `pg_hba.conf` (trust for the unix socket and 127.0.0.1, with or
    /// without TLS), for example with `hostssl` lines only. Default: the script's.
    pub hba: Option<String>,
}

/// The TLS files of a [`PrivateServer`] started with [`PrivateServerOptions::tls`].
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The CA that issued the server's certificate and that the server trusts for client
    /// certificates.
    pub ca: CertificateAuthority,
    /// The server's certificate and key, as generated (the server uses copies in its data
    /// folder, owned by its user, the key with mode 0600).
    pub server: CertifiedKey,
    /// Folder with these files, where tests may create more certificates.
    pub folder: PathBuf,
}

/// A PostgreSQL server in a temporary folder on a free port of 127.0.0.1, stopped and removed
/// when dropped, also when the test panics.
#[derive(Debug)]
pub struct PrivateServer {
    /// Taken by the cleanup, which runs once.
    folder: Option<TempDir>,
    folder_path: PathBuf,
    data: PathBuf,
    url: String,
    port: u16,
    /// PID of the current postmaster, which changes with every restart.
    pid: AtomicU32,
    tls: Option<ServerTls>,
}

impl PrivateServer {
    /// Starts a server with the script's settings: trust authentication on 127.0.0.1, no TLS.
    ///
    /// # Panics
    ///
    /// Panics when the server cannot be installed or started, with the script's output.
    pub async fn start() -> Self {
        Self::start_with(PrivateServerOptions::default()).await
    }

    /// Starts a server with `options`.
    ///
    /// # Panics
    ///
    /// Panics when the server cannot be installed or started, or when `openssl` fails, with
    /// their output.
    pub async fn start_with(options: PrivateServerOptions) -> Self {
        tokio::task::spawn_blocking(move || Self::start_blocking(options))
            .await
            .unwrap_or_else(|err| match err.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(err) => panic!("starting the private PostgreSQL server was cancelled: {err}"),
            })
    }

    /// Returns the URL of the `postgres` database as the superuser `postgres`, without TLS
    /// parameters: `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the temporary folder that contains the data folder and the TLS files, removed
    /// with the server.
    pub fn folder(&self) -> &Path {
        &self.folder_path
    }

    /// Returns the server's data folder, owned by the server's user.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Returns the PID of the running postmaster.
    pub fn postmaster_pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// Returns the TLS files, or `None` for a server without TLS.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    /// Restarts the server with a fast shutdown, which cuts open sessions and keeps committed
    /// data. The server stays down for `down_for` in whole seconds (fractions are dropped), and
    /// the call returns once it accepts connections again on the same port, with how long the
    /// restart took.
    ///
    /// # Panics
    ///
    /// Panics when the restart fails, with the script's output.
    pub async fn restart(&self, down_for: Duration) -> Duration {
        let data = self.data.clone();
        let started = Instant::now();
        let output = tokio::task::spawn_blocking(move || {
            run_script(
                "restart",
                &[
                    ("AETHER_PG_DATA", data.as_os_str()),
                    (
                        "AETHER_PG_RESTART_PAUSE",
                        down_for.as_secs().to_string().as_ref(),
                    ),
                ],
            )
        })
        .await
        .expect("the restart thread panicked");
        assert!(
            output.status.success(),
            "scripts/postgres.sh restart of {} failed with {}: {}",
            self.data.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let exports = Exports::parse(&output.stdout);
        self.pid.store(exports.pid, Ordering::SeqCst);
        started.elapsed()
    }

    /// Stops the server and removes its folder now, instead of the best-effort cleanup on
    /// `Drop`, which only prints failures.
    ///
    /// # Panics
    ///
    /// Panics when the postmaster still runs afterwards or the folder cannot be removed.
    pub async fn stop(mut self) {
        let result = tokio::task::spawn_blocking(move || self.shut_down())
            .await
            .expect("the stop thread panicked");
        if let Err(err) = result {
            panic!("stopping the private PostgreSQL server failed: {err}");
        }
    }

    fn start_blocking(options: PrivateServerOptions) -> Self {
        // The script creates its data folder inside this one. As root, the server runs as the
        // `postgres` user, which must be able to reach that data folder.
        let folder = tempfile::Builder::new()
            .prefix("aether-pg-")
            .tempdir()
            .unwrap_or_else(|err| panic!("cannot create a temporary folder: {err}"));
        set_mode(folder.path(), 0o711);

        let mut env: Vec<(&str, PathBuf)> = vec![("AETHER_PG_DIR", folder.path().to_owned())];
        let tls = options.tls.then(|| {
            let tls_folder = folder.path().join("tls");
            std::fs::create_dir(&tls_folder).unwrap_or_else(|err| {
                panic!("cannot create folder {}: {err}", tls_folder.display())
            });
            set_mode(&tls_folder, 0o700);
            let ca = CertificateAuthority::create(&tls_folder, "ca");
            let server = ca.issue_server(&tls_folder, "server");
            env.push(("AETHER_PG_SSL_CERT_FILE", server.cert.clone()));
            env.push(("AETHER_PG_SSL_KEY_FILE", server.key.clone()));
            env.push(("AETHER_PG_SSL_CA_FILE", ca.cert_path().to_owned()));
            ServerTls {
                ca,
                server,
                folder: tls_folder,
            }
        });
        if let Some(hba) = &options.hba {
            let hba_file = folder.path().join("pg_hba.conf");
            std::fs::write(&hba_file, hba)
                .unwrap_or_else(|err| panic!("cannot write {}: {err}", hba_file.display()));
            env.push(("AETHER_PG_HBA_FILE", hba_file));
        }

        let env: Vec<_> = env
            .iter()
            .map(|(name, value)| (*name, value.as_os_str()))
            .collect();
        let output = run_script("start", &env);
        if !output.status.success() {
            let ci = if std::env::var_os("CI").is_some() {
                "This is a CI run (CI is set): the CI machine must be able to install and run \
                 PostgreSQL 15. "
            } else {
                ""
            };
            panic!(
                "scripts/postgres.sh start failed with {}: {}\n{ci}The private PostgreSQL \
                 server needs the postgresql-15 package (/usr/lib/postgresql/15/bin), which \
                 the script installs with apt-get when run as root; as another user, install \
                 it first",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }

        let exports = Exports::parse(&output.stdout);
        spawn_watchdog(&exports.data, folder.path());
        let port = port_of(&exports.url);
        Self {
            folder_path: folder.path().to_owned(),
            folder: Some(folder),
            data: exports.data,
            url: exports.url,
            port,
            pid: AtomicU32::new(exports.pid),
            tls,
        }
    }

    /// Stops the server through the script, falls back to signals by PID when that fails, and
    /// removes the folder. It returns failures instead of panicking, because it runs in `Drop`,
    /// also while a panic unwinds.
    fn shut_down(&mut self) -> Result<(), String> {
        let Some(folder) = self.folder.take() else {
            return Ok(());
        };
        let mut problems = Vec::new();

        let output = run_script("stop", &[("AETHER_PG_DATA", self.data.as_os_str())]);
        if !output.status.success() {
            problems.push(format!(
                "scripts/postgres.sh stop failed with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }

        // SIGQUIT makes the postmaster do an immediate shutdown, which ends its backends too.
        let pid = self.postmaster_pid();
        if process_alive(pid) {
            for signal in ["QUIT", "KILL"] {
                send_signal(pid, signal);
                if wait_gone(pid) {
                    break;
                }
            }
            if process_alive(pid) {
                problems.push(format!("postmaster PID {pid} still runs after SIGKILL"));
            } else {
                problems.push(format!("postmaster PID {pid} had to be stopped by signal"));
            }
        }

        let path = folder.path().to_owned();
        if let Err(err) = folder.close() {
            problems.push(format!("cannot remove {}: {err}", path.display()));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Err(err) = self.shut_down() {
            eprintln!("aether-testkit: cleanup of the private PostgreSQL server: {err}");
        }
    }
}

/// Values of the `export` lines that `scripts/postgres.sh start` and `restart` print.
struct Exports {
    url: String,
    data: PathBuf,
    pid: u32,
}

impl Exports {
    fn parse(stdout: &[u8]) -> Self {
        let text = String::from_utf8_lossy(stdout);
        let value = |name: &str| {
            let prefix = format!("export {name}=");
            let value = text
                .lines()
                .find_map(|line| line.strip_prefix(&prefix))
                .unwrap_or_else(|| {
                    panic!("no {name} in the output of scripts/postgres.sh: {text}")
                });
            // The script quotes values with printf %q, which leaves these paths and URLs as
            // they are. A quoted value would need a shell to read it.
            assert!(
                !value.contains(['\\', '\'', '"', '$']),
                "{name} in the output of scripts/postgres.sh is quoted, which this fixture \
                 cannot read: {value}"
            );
            value.to_owned()
        };
        let pid = value("AETHER_PG_PID");
        Self {
            url: value("DATABASE_URL"),
            data: PathBuf::from(value("AETHER_PG_DATA")),
            pid: pid
                .parse()
                .unwrap_or_else(|err| panic!("invalid AETHER_PG_PID {pid:?}: {err}")),
        }
    }
}

/// Returns the port of a `postgres://user@127.0.0.1:<port>/db` URL.
fn port_of(url: &str) -> u16 {
    url.rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in the URL {url} from scripts/postgres.sh"))
}

fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres.sh")
}

/// Runs `scripts/postgres.sh <command>` with `env` on top of this process's environment, less
/// the variables that the script reads: `DATABASE_URL` (with it, `start` starts nothing),
/// `AETHER_PG_DATA` (the shared server's) and the settings that only `env` may set.
fn run_script(command: &str, env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let script = script_path();
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg(command)
        .env_remove("DATABASE_URL")
        .env_remove("AETHER_PG_DATA")
        .env_remove("AETHER_PG_PID")
        .env_remove("AETHER_PG_RESTART_PAUSE")
        .env_remove("AETHER_PG_SSL_CERT_FILE")
        .env_remove("AETHER_PG_SSL_KEY_FILE")
        .env_remove("AETHER_PG_SSL_CA_FILE")
        .env_remove("AETHER_PG_HBA_FILE")
        .stdin(Stdio::null());
    for (name, value) in env {
        cmd.env(name, value);
    }
    match cmd.output() {
        Ok(output) => output,
        // Reported as a failed run, because `shut_down` must not panic.
        Err(err) => Output {
            status: failed_status(),
            stdout: Vec::new(),
            stderr: format!("cannot run bash {}: {err}", script.display()).into_bytes(),
        },
    }
}

fn failed_status() -> std::process::ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    std::process::ExitStatus::from_raw(1 << 8)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|err| panic!("cannot set the mode of {}: {err}", path.display()));
}

/// Returns whether the process runs and is not a zombie, from `/proc/<pid>/stat`.
fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state letter follows the command name, which is in parentheses.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, Some('Z') | None)
}

fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while process_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(EXIT_POLL);
    }
    true
}

/// Starts a watchdog that stops the server and removes `folder` once this test process has
/// exited. After a normal `Drop` both are gone already, and the script's `stop` reports that
/// there is nothing to stop.
fn spawn_watchdog(data: &Path, folder: &Path) {
    let cleanup = format!(
        "AETHER_PG_DATA={data} bash {script} stop >/dev/null 2>&1; rm -rf -- {folder}",
        data = shell_quote(data),
        script = shell_quote(&script_path()),
        folder = shell_quote(folder),
    );
    crate::watchdog::spawn(
        &cleanup,
        &["DATABASE_URL"],
        &format!("the server in {}", data.display()),
    );
}
