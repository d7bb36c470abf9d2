//! PostgreSQL for tests: a fresh schema per test on the shared server named by `DATABASE_URL`,
//! and private servers for tests that would disturb the shared one.
//!
//! ```text
//! eval "$(scripts/postgres.sh start)" ──▶ DATABASE_URL
//!                                              │
//! TestSchema::create() ──▶ CREATE SCHEMA aether_test_<uuid> ──▶ store config .schema(name)
//!        drop / cleanup() ──▶ DROP SCHEMA … CASCADE
//!
//! PrivateServer::start_with(options) ──▶ scripts/postgres.sh start in a temporary folder
//!        restart(down_for), TLS, own pg_hba.conf; drop ──▶ stop, remove the folder
//! ```
//!
//! Tests that restart or stop a server, or need server settings such as TLS, use a
//! [`PrivateServer`], so they can run in parallel with the tests on the shared server, also
//! under a parallel runner such as cargo-nextest.
//!
//! A missing `DATABASE_URL` is a loud failure, in CI and locally: the PostgreSQL tests are meant
//! to run only after `scripts/postgres.sh start`, never to pass by skipping. A private server
//! that cannot be started (PostgreSQL 15 missing and not installable) is a loud failure too.

mod certificates;
mod private_server;

pub use certificates::{CertificateAuthority, CertifiedKey};
pub use private_server::{PrivateServer, PrivateServerOptions, ServerTls};

use sqlx::{Connection, PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

/// Environment variable with the server's URL.
pub const URL_ENV: &str = "DATABASE_URL";

/// How long cleanup waits for locks held by connections that are still closing.
const CLEANUP_LOCK_TIMEOUT: &str = "10s";

/// Returns the server's URL from [`URL_ENV`].
///
/// # Panics
///
/// Panics when the variable is not set, with the commands that start a server.
pub fn database_url() -> String {
    match std::env::var(URL_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let context = if std::env::var_os("CI").is_some() {
                "CI must start PostgreSQL before the tests"
            } else {
                "the PostgreSQL tests need a running server"
            };
            panic!(
                "{URL_ENV} is not set: {context}. Start a throwaway server with \
                 `eval \"$(scripts/postgres.sh start)\"` from the repository root, run the tests, \
                 then `scripts/postgres.sh stop`; or set {URL_ENV} to a server of your own"
            )
        }
    }
}

/// A schema of its own for one test, dropped with everything in it when this value is dropped
/// or [`TestSchema::cleanup`] is called.
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    name: String,
    dropped: bool,
}

impl TestSchema {
    /// Creates a schema with a unique name (`aether_test_` and 32 hex digits) on the server of
    /// [`database_url`].
    ///
    /// # Panics
    ///
    /// Panics when `DATABASE_URL` is missing or the server cannot be reached.
    pub async fn create() -> Self {
        let url = database_url();
        let name = format!("aether_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&url)
            .await
            .unwrap_or_else(|err| panic!("cannot connect to {URL_ENV}={url}: {err}"));
        let mut create = QueryBuilder::<Postgres>::new("CREATE SCHEMA ");
        create.push(format_args!("\"{name}\""));
        create
            .build()
            .execute(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("cannot create schema {name}: {err}"));
        let _ = conn.close().await;
        Self {
            url,
            name,
            dropped: false,
        }
    }

    /// Returns the server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the schema now and reports a failure, instead of the best-effort drop on `Drop`.
    ///
    /// # Errors
    ///
    /// The sqlx error of the connection or of `DROP SCHEMA`.
    pub async fn cleanup(mut self) -> Result<(), sqlx::Error> {
        self.dropped = true;
        drop_schema(&self.url, &self.name).await
    }
}

impl Drop for TestSchema {
    /// Drops the schema on a thread with a runtime of its own, because `Drop` cannot await and
    /// may run inside or outside a Tokio runtime. Failures are printed, not raised.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let url = self.url.clone();
        let name = self.name.clone();
        let worker = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => {
                    if let Err(err) = runtime.block_on(drop_schema(&url, &name)) {
                        eprintln!("aether-testkit: could not drop test schema {name}: {err}");
                    }
                }
                Err(err) => {
                    eprintln!("aether-testkit: no runtime to drop test schema {name}: {err}")
                }
            }
        });
        let _ = worker.join();
    }
}

async fn drop_schema(url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    let mut timeout = QueryBuilder::<Postgres>::new("SET lock_timeout = ");
    timeout.push(format_args!("'{CLEANUP_LOCK_TIMEOUT}'"));
    timeout.build().execute(&mut conn).await?;
    let mut drop = QueryBuilder::<Postgres>::new("DROP SCHEMA IF EXISTS ");
    drop.push(format_args!("\"{name}\" CASCADE"));
    drop.build().execute(&mut conn).await?;
    conn.close().await
}
