//! Runs the `retail` binary end to end. It runs on sled over a large slice of the shipped data
//! twice, and on a NATS JetStream server and a PostgreSQL server over a small slice twice. Small
//! files made here cover rejected and malformed lines, unusable input files and data folders,
//! servers that are not running, and bad arguments.
//!
//! A debug build sent about 1,900 commands/s to sled on a 2-core machine, so the whole file would
//! take about five minutes. The sled test therefore takes the first 100,000 lines, and
//! `cargo run --release -p aether-examples --bin retail` runs the whole file.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use flate2::Compression;
use flate2::write::GzEncoder;

const HEADER: &str =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

/// Lines of the shipped file the sled test reads.
const SLICE: u64 = 100_000;

fn retail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retail"))
        .args(args)
        .arg("--no-progress")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the retail binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Returns the first number after `label` on the summary line that starts with it.
fn figure(summary: &str, label: &str) -> u64 {
    let line = summary
        .lines()
        .find(|line| line.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no line {label:?} in:\n{summary}"));
    let rest = &line.trim_start()[label.len()..];
    let number: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?} in {line:?}"))
}

/// Checks that the run succeeded and every kind's actors all matched.
fn assert_verified(output: &Output, kinds: usize) {
    let summary = stdout(output);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{summary}\nstderr:\n{}",
        output.status,
        stderr(output)
    );
    assert!(summary.contains("result: OK"), "{summary}");
    assert!(summary.contains("job counts       match"), "{summary}");
    let matched = summary
        .lines()
        .filter(|line| line.contains(" match; "))
        .inspect(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[1], words[3], "not every actor matched: {line}");
        })
        .count();
    assert_eq!(matched, kinds, "{summary}");
}

fn write_gz(path: &Path, body: &str) {
    let mut encoder = GzEncoder::new(File::create(path).unwrap(), Compression::fast());
    encoder.write_all(HEADER.as_bytes()).unwrap();
    encoder.write_all(body.as_bytes()).unwrap();
    encoder.finish().unwrap();
}

#[test]
fn sled_second_run_adds_no_events() {
    let folder = tempfile::tempdir().unwrap();
    let store = folder.path().join("store");
    let store_arg = store.to_str().unwrap();
    let limit = SLICE.to_string();
    let args = [
        "--store",
        "sled",
        "--data-dir",
        store_arg,
        "--limit",
        limit.as_str(),
    ];

    let first = retail(&args);
    assert_verified(&first, 3);
    let summary = stdout(&first);
    assert_eq!(figure(&summary, "lines read"), SLICE);
    assert_eq!(figure(&summary, "commands"), SLICE);
    let events = figure(&summary, "new events");
    assert!(events > 2 * SLICE, "{summary}");
    assert!(figure(&summary, "snapshots") > 0, "{summary}");
    assert!(store.join("aether-retail-store.txt").is_file());

    let second = retail(&args);
    assert_verified(&second, 3);
    let summary = stdout(&second);
    assert_eq!(figure(&summary, "commands"), SLICE);
    assert_eq!(figure(&summary, "new events"), 0, "{summary}");
    assert_eq!(figure(&summary, "snapshots"), 0, "{summary}");

    // The events found by the verification are those of the first run.
    let stored: u64 = summary
        .lines()
        .filter(|line| line.contains("events stored"))
        .map(|line| figure(line.split("; ").nth(1).unwrap(), ""))
        .sum();
    assert_eq!(stored, events, "{summary}");
}

#[test]
fn fresh_starts_from_empty_store() {
    let folder = tempfile::tempdir().unwrap();
    let store = folder.path().join("store");
    let args = [
        "--store",
        "sled",
        "--data-dir",
        store.to_str().unwrap(),
        "--limit",
        "2000",
    ];
    let first = retail(&args);
    assert_verified(&first, 3);
    let events = figure(&stdout(&first), "new events");

    let fresh = retail(&[&args[..], &["--fresh"]].concat());
    assert_verified(&fresh, 3);
    let summary = stdout(&fresh);
    assert!(summary.contains("deleted first (--fresh)"), "{summary}");
    assert_eq!(figure(&summary, "new events"), events, "{summary}");
}

#[test]
fn verification_reports_mismatch() {
    let folder = tempfile::tempdir().unwrap();
    let store = folder.path().join("store");
    let data_dir = store.to_str().unwrap();
    let full = retail(&["--store", "sled", "--data-dir", data_dir, "--limit", "2000"]);
    assert_verified(&full, 3);

    // The store now contains more lines than the expected totals of the shorter prefix.
    let short = retail(&["--store", "sled", "--data-dir", data_dir, "--limit", "1000"]);
    assert_eq!(short.status.code(), Some(1), "{}", stderr(&short));
    let summary = stdout(&short);
    assert!(summary.contains("result: FAILED"), "{summary}");
    assert!(summary.contains("rerun with --fresh"), "{summary}");
    assert_eq!(figure(&summary, "new events"), 0, "{summary}");
    let detail = summary
        .lines()
        .find(|line| line.trim_start().starts_with("invoice \""))
        .unwrap_or_else(|| panic!("no invoice mismatch shown:\n{summary}"));
    assert!(detail.contains("lines "), "{detail}");
    assert!(detail.contains(", expected "), "{detail}");
}

#[test]
fn fresh_keeps_unmarked_folder() {
    let folder = tempfile::tempdir().unwrap();
    let notes = folder.path().join("notes.txt");
    std::fs::write(&notes, "not a store").unwrap();
    let data_dir = folder.path().to_str().unwrap();

    let output = retail(&["--store", "sled", "--data-dir", data_dir, "--fresh"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is not a retail store"),
        "{}",
        stderr(&output)
    );
    assert!(notes.is_file());
}

#[test]
fn postgres_without_url_exits_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_retail"))
        .args(["--store", "postgres", "--limit", "10", "--no-progress"])
        .env_remove("DATABASE_URL")
        .output()
        .expect("the retail binary runs");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("--store postgres needs --database-url"),
        "{message}"
    );
    assert!(message.contains("hint: pass --database-url"), "{message}");
    assert!(stdout(&output).is_empty());

    // An empty DATABASE_URL, as `DATABASE_URL= retail ...` leaves it, counts as none.
    let empty = Command::new(env!("CARGO_BIN_EXE_retail"))
        .args(["--store", "postgres", "--limit", "10", "--no-progress"])
        .env("DATABASE_URL", "")
        .output()
        .expect("the retail binary runs");
    assert_eq!(empty.status.code(), Some(2), "{}", stderr(&empty));
    assert!(
        stderr(&empty).contains("--store postgres needs --database-url"),
        "{}",
        stderr(&empty)
    );
}

/// Lines of the shipped file the JetStream and PostgreSQL tests read.
const SERVER_SLICE: &str = "3000";

/// Runs the job twice against one server namespace: the first run verifies, the second stores
/// nothing new and verifies again.
fn run_twice_on_server(store_args: &[&str]) {
    let mut first_args = store_args.to_vec();
    first_args.extend(["--fresh", "--limit", SERVER_SLICE]);
    let first = retail(&first_args);
    assert_verified(&first, 3);
    assert!(
        figure(&stdout(&first), "new events") > 0,
        "{}",
        stdout(&first)
    );

    let mut second_args = store_args.to_vec();
    second_args.extend(["--limit", SERVER_SLICE]);
    let second = retail(&second_args);
    assert_verified(&second, 3);
    assert_eq!(
        figure(&stdout(&second), "new events"),
        0,
        "{}",
        stdout(&second)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_job_verifies_and_repeats() {
    let server = aether_testkit::nats::shared_single_node().await;
    let url = server.urls()[0].clone();
    let namespace = aether_testkit::nats::unique_namespace("retail");
    tokio::task::spawn_blocking(move || {
        run_twice_on_server(&[
            "--store",
            "jetstream",
            "--nats-url",
            &url,
            "--namespace",
            &namespace,
        ]);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_job_verifies_and_repeats() {
    let schema = aether_testkit::postgres::TestSchema::create().await;
    let url = schema.url().to_owned();
    let namespace = schema.name().to_owned();
    tokio::task::spawn_blocking(move || {
        run_twice_on_server(&[
            "--store",
            "postgres",
            "--database-url",
            &url,
            "--namespace",
            &namespace,
        ]);
    })
    .await
    .unwrap();
    schema.cleanup().await.unwrap();
}

#[test]
fn malformed_line_reported_and_skipped() {
    let folder = tempfile::tempdir().unwrap();
    let input = folder.path().join("lines.csv.gz");
    write_gz(
        &input,
        concat!(
            "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n",
            "536365,71053,LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom\n",
            "536366,22633,SHORT ROW,6\n",
            "536366,22633,HAND WARMER,6,2010-12-01 08:28:00,1.85,17850.0,United Kingdom\n",
            "536367,84879,BIRD,32,2010-12-01 08:34:00,1.6900,13047.0,United Kingdom\n",
            "536367,22745,POPPY,6,2010-12-01 08:34:00,2.10,13047.0,United Kingdom\n",
        ),
    );

    let output = retail(&["--store", "memory", "--input", input.to_str().unwrap()]);
    assert_verified(&output, 3);
    let summary = stdout(&output);
    assert_eq!(figure(&summary, "lines read"), 6);
    assert_eq!(figure(&summary, "malformed lines"), 2, "{summary}");
    assert!(
        summary.contains("malformed line 4: expected 8 columns, found 4"),
        "{summary}"
    );
    assert!(
        summary.contains("malformed line 6: invalid UnitPrice"),
        "{summary}"
    );
    assert_eq!(figure(&summary, "commands"), 4, "{summary}");
    assert!(
        stderr(&output).contains("malformed line 4"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn each_shop_rule_rejects() {
    let folder = tempfile::tempdir().unwrap();
    let input = folder.path().join("rules.csv.gz");
    write_gz(
        &input,
        concat!(
            "A1,B,Adjust bad debt,1,2011-08-12 14:51:00,-1.00,,United Kingdom\n",
            "2,X,ZERO,0,2011-01-01 10:00:00,1.00,12346.0,United Kingdom\n",
            "C3,X,POSITIVE,2,2011-01-01 10:00:00,1.00,12346.0,United Kingdom\n",
            "C3,X,NEGATIVE,-2,2011-01-01 10:00:00,1.00,12346.0,United Kingdom\n",
            "C3,X,OTHER CUSTOMER,-2,2011-01-01 10:00:00,1.00,12347.0,United Kingdom\n",
            "C3,X,NO CUSTOMER,-2,2011-01-01 10:00:00,1.00,,United Kingdom\n",
            "C3,X,OTHER COUNTRY,-2,2011-01-01 10:00:00,1.00,12346.0,France\n",
            "4,Y,SALE,3,2011-01-01 11:00:00,2.50,12346.0,United Kingdom\n",
        ),
    );

    let output = retail(&["--store", "memory", "--input", input.to_str().unwrap()]);
    assert_verified(&output, 3);
    let summary = stdout(&output);
    assert_eq!(figure(&summary, "rejected lines"), 6, "{summary}");
    let expected = [
        ("negative unit price", 1),
        ("zero quantity", 1),
        ("positive quantity on a cancellation", 1),
        ("customer differs from the invoice's", 2),
        ("country differs from the invoice's", 1),
    ];
    for (reason, lines) in expected {
        assert_eq!(figure(&summary, reason), lines, "{reason}\n{summary}");
    }
    assert!(summary.contains("line 6: customer differs"), "{summary}");
    assert_eq!(figure(&summary, "commands"), 8);
}

/// Returns a port on 127.0.0.1 that nothing listens on: the system picks a free one, and the
/// listener is closed again.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Checks that a run failed with `code`, printed nothing to standard output, and that its
/// standard error contains each of `parts`.
fn assert_failed(output: &Output, code: i32, parts: &[&str]) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{message}");
    assert!(stdout(output).is_empty(), "{}", stdout(output));
    for part in parts {
        assert!(message.contains(part), "no {part:?} in:\n{message}");
    }
}

#[test]
fn plain_csv_input_is_read() {
    let folder = tempfile::tempdir().unwrap();
    let input = folder.path().join("lines.csv");
    let body = concat!(
        "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n",
        "536365,71053,LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom\n",
        "536366,22633,HAND WARMER,6,2010-12-01 08:28:00,1.85,17850.0,United Kingdom\n",
    );
    std::fs::write(&input, format!("{HEADER}{body}")).unwrap();

    let output = retail(&["--store", "memory", "--input", input.to_str().unwrap()]);
    assert_verified(&output, 3);
    let summary = stdout(&output);
    assert_eq!(figure(&summary, "lines read"), 3, "{summary}");
    assert_eq!(figure(&summary, "commands"), 3, "{summary}");
}

#[test]
fn unusable_input_names_the_file() {
    let folder = tempfile::tempdir().unwrap();
    let binary = folder.path().join("random.bin");
    std::fs::write(&binary, b"\x00\x9c\xff\x01\x02 not a CSV\n").unwrap();
    let empty = folder.path().join("empty.csv.gz");
    std::fs::write(&empty, b"").unwrap();
    let directory = folder.path().join("a-folder");
    std::fs::create_dir(&directory).unwrap();
    let missing = folder.path().join("missing.csv.gz");
    let corrupt = folder.path().join("corrupt.csv.gz");
    std::fs::write(&corrupt, b"\x1f\x8b\x63\x00\x00\x00\x00\x00\x00\x03rest").unwrap();

    let cases = [
        (&binary, "is not the Online Retail header"),
        (&binary, "does not begin with the gzip magic bytes 1f 8b"),
        (&empty, "is empty"),
        (&directory, "is a directory"),
        (&missing, "failed to open the input file"),
        (&corrupt, "failed to decompress"),
    ];
    for (path, part) in cases {
        let output = retail(&["--store", "memory", "--input", path.to_str().unwrap()]);
        let path = path.display().to_string();
        assert_failed(
            &output,
            1,
            &[&path, part, "hint: the store was left as it was"],
        );
    }
}

#[test]
fn truncated_gzip_names_line_reached() {
    let folder = tempfile::tempdir().unwrap();
    let input = folder.path().join("cut.csv.gz");
    let shipped =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/online-retail.csv.gz"))
            .unwrap();
    std::fs::write(&input, &shipped[..40_000]).unwrap();

    let output = retail(&["--store", "memory", "--input", input.to_str().unwrap()]);
    let message = stderr(&output);
    assert_failed(
        &output,
        1,
        &[
            &input.display().to_string(),
            "is truncated",
            "a rerun with the complete file",
        ],
    );
    let reached: u64 = message
        .split("after line ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no line number in:\n{message}"));
    assert!(reached > 100, "{message}");
}

#[test]
fn fresh_with_bad_input_keeps_store() {
    let folder = tempfile::tempdir().unwrap();
    let store = folder.path().join("store");
    let data_dir = store.to_str().unwrap();
    let first = retail(&["--store", "sled", "--data-dir", data_dir, "--limit", "500"]);
    assert_verified(&first, 3);
    assert!(figure(&stdout(&first), "new events") > 0);

    let missing = folder.path().join("missing.csv.gz");
    let fresh = retail(&[
        "--store",
        "sled",
        "--data-dir",
        data_dir,
        "--fresh",
        "--input",
        missing.to_str().unwrap(),
    ]);
    assert_failed(&fresh, 1, &["missing.csv.gz", "nothing stored or deleted"]);

    // The events of the first run are still there, so the same run stores nothing new.
    let again = retail(&["--store", "sled", "--data-dir", data_dir, "--limit", "500"]);
    assert_verified(&again, 3);
    assert_eq!(
        figure(&stdout(&again), "new events"),
        0,
        "{}",
        stdout(&again)
    );
}

#[test]
fn folder_in_use_by_other_job() {
    let folder = tempfile::tempdir().unwrap();
    let store = folder.path().join("store");
    let other_job = aether_examples::retail::store::prepare_data_dir(&store, false).unwrap();
    let other_job_file = store.join("db");
    std::fs::write(&other_job_file, "another job's data").unwrap();

    for fresh in [false, true] {
        // The limit keeps a run short should the folder not be rejected.
        let mut args = vec![
            "--store",
            "sled",
            "--data-dir",
            store.to_str().unwrap(),
            "--limit",
            "10",
        ];
        if fresh {
            args.push("--fresh");
        }
        let output = retail(&args);
        assert_failed(
            &output,
            1,
            &[
                &store.display().to_string(),
                "is in use by another retail job",
                "choose another --data-dir",
            ],
        );
    }
    assert_eq!(
        std::fs::read_to_string(&other_job_file).unwrap(),
        "another job's data"
    );
    drop(other_job);
}

#[test]
fn sled_locked_by_other_process() {
    let folder = tempfile::tempdir().unwrap();
    let store = folder.path().join("store");
    drop(aether_examples::retail::store::prepare_data_dir(&store, false).unwrap());
    let holder = aether_sled::SledStore::open(&store).unwrap();

    let output = retail(&[
        "--store",
        "sled",
        "--data-dir",
        store.to_str().unwrap(),
        "--limit",
        "10",
    ]);
    assert_failed(
        &output,
        1,
        &[
            &format!(
                "the sled store in {} is in use by another process",
                store.display()
            ),
            "choose another --data-dir",
        ],
    );
    drop(holder);
}

#[test]
fn data_dir_that_is_a_file() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("notes.txt");
    std::fs::write(&file, "not a folder").unwrap();

    let output = retail(&[
        "--store",
        "sled",
        "--data-dir",
        file.to_str().unwrap(),
        "--fresh",
        "--limit",
        "10",
    ]);
    assert_failed(
        &output,
        1,
        &[&file.display().to_string(), "is not a folder"],
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder");
}

#[test]
fn jetstream_without_server_names_url() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let output = retail(&["--store", "jetstream", "--nats-url", &url, "--limit", "10"]);
    assert_failed(
        &output,
        1,
        &[
            &format!("failed to connect to NATS at {url}"),
            "hint: check that a NATS server",
        ],
    );
}

#[test]
fn postgres_without_server_hides_password() {
    let port = free_port();
    let url = format!("postgres://retail:secret-word@127.0.0.1:{port}/retail");
    let output = retail(&[
        "--store",
        "postgres",
        "--database-url",
        &url,
        "--limit",
        "10",
    ]);
    assert_failed(
        &output,
        1,
        &[
            &format!("127.0.0.1:{port}"),
            "hint: check that a PostgreSQL server",
        ],
    );
    assert!(
        !stderr(&output).contains("secret-word"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn invalid_arguments_exit_2() {
    let free = format!("127.0.0.1:{}", free_port());
    let nats_url = format!("nats://{free}");
    let database_url = format!("postgres://retail@{free}/retail");
    let cases: [(&[&str], &str); 5] = [
        (
            &["--store", "postgres", "--database-url", "not a url"],
            "invalid --database-url",
        ),
        (
            &[
                "--store",
                "postgres",
                "--database-url",
                &database_url,
                "--namespace",
                "Bad-Name",
            ],
            "choose another --namespace",
        ),
        (
            &[
                "--store",
                "jetstream",
                "--nats-url",
                &nats_url,
                "--namespace",
                "bad.name",
            ],
            "choose another --namespace",
        ),
        (&["--limit", "-3"], "invalid value '-3' for '--limit <N>'"),
        (
            &["--store", "mongo"],
            "invalid value 'mongo' for '--store <STORE>'",
        ),
    ];
    for (args, part) in cases {
        let output = retail(args);
        assert_failed(&output, 2, &[part]);
    }
}
