//! The private PostgreSQL server fixture: restart, and cleanup on stop, on a panic and after
//! the test process is killed.

#![cfg(feature = "postgres")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aether_testkit::postgres::PrivateServer;
use sqlx::{Connection, PgConnection};

/// Bound on waiting for a server or a watchdog to finish its work.
const WAIT: Duration = Duration::from_secs(30);

/// Environment variable that makes [`watchdog_helper`] start a server and wait to be killed.
const HELPER_ENV: &str = "AETHER_TESTKIT_WATCHDOG_HELPER";
/// Prefix of the line in which [`watchdog_helper`] reports its server.
const HELPER_LINE: &str = "private server:";

fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits until the postmaster has exited and the server's folder is gone.
fn wait_cleaned_up(pid: u32, folder: &Path) {
    let started = Instant::now();
    while process_alive(pid) || folder.exists() {
        assert!(
            started.elapsed() < WAIT,
            "after {WAIT:?}, postmaster PID {pid} runs: {}, folder {} exists: {}",
            process_alive(pid),
            folder.display(),
            folder.exists()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn count_rows(url: &str) -> i64 {
    let mut conn = PgConnection::connect(url)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {url}: {err}"));
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM kept")
        .fetch_one(&mut conn)
        .await
        .expect("count failed");
    count
}

#[tokio::test]
async fn restart_keeps_port_and_data() {
    let server = PrivateServer::start().await;
    let url = server.url().to_owned();
    assert!(
        url.starts_with("postgres://postgres@127.0.0.1:"),
        "unexpected URL {url}"
    );
    assert!(url.contains(&format!(":{}/", server.port())));

    let mut conn = PgConnection::connect(&url).await.expect("connect failed");
    sqlx::query("CREATE TABLE kept (id int PRIMARY KEY)")
        .execute(&mut conn)
        .await
        .expect("CREATE TABLE failed");
    sqlx::query("INSERT INTO kept VALUES (1), (2)")
        .execute(&mut conn)
        .await
        .expect("INSERT failed");

    let old_pid = server.postmaster_pid();
    let took = server.restart(Duration::from_secs(1)).await;
    assert!(
        took >= Duration::from_secs(1),
        "the restart took {took:?}, shorter than the requested pause"
    );
    assert_ne!(
        server.postmaster_pid(),
        old_pid,
        "the postmaster did not change"
    );
    assert!(!process_alive(old_pid), "the old postmaster still runs");
    assert!(
        sqlx::query("SELECT 1").execute(&mut conn).await.is_err(),
        "a session opened before the restart still works"
    );
    assert_eq!(
        count_rows(server.url()).await,
        2,
        "committed rows were lost"
    );

    let pid = server.postmaster_pid();
    let folder = server.folder().to_owned();
    server.stop().await;
    assert!(!process_alive(pid), "the postmaster still runs after stop");
    assert!(
        !folder.exists(),
        "{} still exists after stop",
        folder.display()
    );
}

#[test]
fn panic_in_test_still_cleans_up() {
    let (report, reported) = mpsc::channel();
    let test = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let server = PrivateServer::start().await;
            let folder = server.folder().to_owned();
            report.send((server.postmaster_pid(), folder)).unwrap();
            panic!("a failing test");
        });
    });
    assert!(test.join().is_err(), "the test thread did not panic");
    let (pid, folder) = reported.recv().expect("the server was not started");
    // Drop runs during the unwinding, so everything is gone at once.
    assert!(
        !process_alive(pid),
        "the postmaster still runs after the panic"
    );
    assert!(
        !folder.exists(),
        "{} still exists after the panic",
        folder.display()
    );
}

#[test]
fn watchdog_cleans_up_after_kill() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "watchdog_helper", "--ignored", "--nocapture"])
        .env(HELPER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot run the test binary");

    // Read the helper's report on a thread, so that waiting for it has a deadline.
    let stdout = child.stdout.take().unwrap();
    let (report, reported) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(HELPER_LINE) {
                let _ = report.send(rest.trim().to_owned());
            }
        }
    });
    let line = match reported.recv_timeout(WAIT) {
        Ok(line) => line,
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the helper did not report its server within {WAIT:?}: {err}");
        }
    };
    let (pid, folder) = line.split_once(' ').expect("malformed helper line");
    let pid: u32 = pid.parse().expect("malformed PID");
    let folder = PathBuf::from(folder);
    assert!(process_alive(pid), "the helper's postmaster does not run");

    // SIGKILL, so no Drop runs: only the watchdog can clean up.
    child.kill().expect("cannot kill the helper");
    child.wait().expect("cannot reap the helper");
    wait_cleaned_up(pid, &folder);
}

/// Started by [`watchdog_cleans_up_after_kill`]: starts a server, reports its postmaster PID
/// and folder, and waits to be killed. It ends by itself after [`WAIT`].
#[tokio::test]
#[ignore = "helper process of watchdog_cleans_up_after_kill"]
async fn watchdog_helper() {
    if std::env::var_os(HELPER_ENV).is_none() {
        eprintln!("{HELPER_ENV} is not set, so there is no watchdog test waiting for this helper");
        return;
    }
    let server = PrivateServer::start().await;
    println!(
        "{HELPER_LINE} {} {}",
        server.postmaster_pid(),
        server.folder().display()
    );
    tokio::time::sleep(WAIT).await;
}
