//! The retail job: loads the Online Retail data set into invoice, customer and product actors,
//! then reads every actor back and compares it with totals computed straight from the CSV.
//!
//! Exit codes: 0 when everything matched, 1 on a mismatch, a failed command or any other error,
//! 2 for invalid arguments, including a missing or invalid `--database-url` for
//! `--store postgres` and a `--namespace` that the store rejects.
//!
//! An error is printed to standard error as one `error:` line with its causes, followed by a
//! `hint:` line when there is a next step to suggest.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use aether_examples::retail::progress::Progress;
use aether_examples::retail::run::{JobOptions, run};
use aether_examples::retail::store::StoreKind;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Loads the Online Retail data set into aether actors and verifies the result.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The Online Retail CSV. A file that starts with the gzip magic bytes (1f 8b) is
    /// decompressed; any other file is read as plain CSV.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/data/online-retail.csv.gz"))]
    input: PathBuf,

    /// The event store.
    #[arg(long, value_enum, default_value_t = StoreKind::Sled)]
    store: StoreKind,

    /// The folder of the sled store; the job marks it as a retail store when it creates it.
    #[arg(long, default_value = "./retail-data")]
    data_dir: PathBuf,

    /// Start from an empty store: deletes everything but the marker file in the sled folder
    /// (only a folder with the job's marker file), the JetStream namespace, or the PostgreSQL
    /// schema of `--namespace`.
    #[arg(long)]
    fresh: bool,

    /// The NATS server for `--store jetstream`.
    #[arg(long, env = "AETHER_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,

    /// The PostgreSQL server for `--store postgres`, such as postgres://user@127.0.0.1/db.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,

    /// The JetStream namespace or PostgreSQL schema the job writes to. PostgreSQL takes
    /// lowercase letters, digits and `_`, starting with a letter or `_`; JetStream also takes
    /// uppercase letters and `-`.
    #[arg(long, default_value = "retail")]
    namespace: String,

    /// Process only the first N data lines; the verification then uses the same lines.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    limit: Option<u64>,

    /// Invoices sent to at the same time; each gets its lines one after another.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 256,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(u64).range(1..=100_000)
    )]
    concurrency: u64,

    /// Do not show the progress bar. It is also hidden when standard output is not a terminal.
    #[arg(long)]
    no_progress: bool,

    /// Skip reading every actor back after the ingest.
    #[arg(long)]
    no_verify: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let progress = Progress::on_terminal(!args.no_progress);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(progress.log_writer())
        .init();

    let options = JobOptions {
        input: args.input,
        store: args.store,
        data_dir: args.data_dir,
        fresh: args.fresh,
        nats_url: args.nats_url,
        database_url: args.database_url,
        namespace: args.namespace,
        limit: args.limit,
        concurrency: usize::try_from(args.concurrency).unwrap_or(usize::MAX),
        verify: !args.no_verify,
        progress,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the Tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };

    match runtime.block_on(run(&options)) {
        Ok(report) => {
            print!("{report}");
            if report.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: {}", aether::core::ErrorChain(&error));
            if let Some(hint) = error.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}
