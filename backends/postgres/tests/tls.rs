//! TLS between the store and a private server that accepts only `hostssl` connections, with a
//! CA, server certificate and client certificates made by `openssl` for each test.
//!
//! The server's `pg_hba.conf` lets the role `aether_cert` log in only with a client certificate
//! whose common name is `aether_cert`, and every other role with any TLS connection.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aether_core::{ErrorKind, EventFilter, EventStore, ExpectedVersion, StoreError, Version};
use aether_postgres::{PgSslMode, PostgresConfig, PostgresStore};
use aether_testkit::postgres::{
    CertificateAuthority, CertifiedKey, PrivateServer, PrivateServerOptions,
};
use common::{WAIT, actor, connect, event};
use futures::{StreamExt, TryStreamExt};

/// Only TLS connections from 127.0.0.1, and a client certificate for `aether_cert`.
const HBA: &str = "\
# TYPE   DATABASE  USER         ADDRESS       METHOD
hostssl  all       aether_cert  127.0.0.1/32  cert
hostssl  all       all          127.0.0.1/32  trust
";

/// Role that logs in with a client certificate.
const CERT_USER: &str = "aether_cert";

/// Acquire timeout of the stores in these tests. A rejected connection must fail well before
/// it with the server's or the TLS library's reason, not with a pool timeout.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

async fn tls_server() -> PrivateServer {
    PrivateServer::start_with(PrivateServerOptions {
        tls: true,
        hba: Some(HBA.to_owned()),
    })
    .await
}

/// Returns the server's URL with `params` appended as its query string.
fn url_with(server: &PrivateServer, params: &str) -> String {
    format!("{}?{params}", server.url())
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn config(url: &str) -> PostgresConfig {
    PostgresConfig::from_url(url)
        .unwrap_or_else(|err| panic!("invalid URL {url}: {err}"))
        .schema("tls_test")
        .acquire_timeout(ACQUIRE_TIMEOUT)
}

/// Connects a store that is expected to be rejected, and returns the error and how long the
/// attempt took.
async fn connect_err(config: PostgresConfig) -> (StoreError, Duration) {
    let started = Instant::now();
    let result = tokio::time::timeout(WAIT, PostgresStore::connect(config))
        .await
        .expect("the rejected connect timed out");
    match result {
        Ok(store) => panic!("the connect was expected to fail but succeeded: {store:?}"),
        Err(err) => (err, started.elapsed()),
    }
}

/// Joins the messages of the error and of its sources with ": ".
fn chain(err: &StoreError) -> String {
    aether_core::ErrorChain(err).to_string()
}

/// Checks that a rejected connect failed with a permanent error that names `reason`, before
/// the acquire timeout.
fn assert_rejected(what: &str, err: &StoreError, took: Duration, reason: &str) {
    let text = chain(err);
    eprintln!("{what}: {err:?}\n  message: {text}");
    assert_eq!(
        err.kind(),
        ErrorKind::Backend,
        "{what}: a rejected connection cannot succeed on a retry, so it must not be \
         Unavailable: {text}"
    );
    assert!(
        text.contains(reason),
        "{what}: the error does not say {reason:?}: {text}"
    );
    assert!(
        took < ACQUIRE_TIMEOUT,
        "{what}: the connect took {took:?}, so it waited for the acquire timeout instead of \
         failing at once"
    );
}

/// Returns whether the session of this pooled connection uses TLS, from `pg_stat_ssl`, and
/// its protocol version.
async fn session_tls(store: &PostgresStore) -> (bool, Option<String>) {
    sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .expect("query of pg_stat_ssl failed")
}

#[tokio::test]
async fn verify_full_with_ca_encrypts_session() {
    let server = tls_server().await;
    let tls = server.tls().expect("the server has TLS");
    let url = url_with(
        &server,
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            path_str(tls.ca.cert_path())
        ),
    );
    let store = connect(config(&url)).await;

    // One actor: append, read back, and receive it through a subscription, whose LISTEN
    // connection is opened outside the pool with the same TLS settings.
    let alice = actor("alice");
    let outcome = store
        .append(&alice, ExpectedVersion::NoEvents, vec![event("over TLS")])
        .await
        .expect("append over TLS failed");
    assert_eq!(outcome.version, Version::new(1));
    let stored: Vec<_> =
        tokio::time::timeout(WAIT, store.read(&alice, Version::new(1)).try_collect())
            .await
            .expect("read timed out")
            .expect("read over TLS failed");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload, "over TLS".as_bytes());
    let mut subscription = store.subscribe(aether_core::Position::START, EventFilter::all());
    let received = tokio::time::timeout(WAIT, subscription.next())
        .await
        .expect("the subscription received nothing")
        .expect("the subscription ended")
        .expect("the subscription failed");
    assert_eq!(received.payload, "over TLS".as_bytes());

    let (ssl, version) = session_tls(&store).await;
    assert!(
        ssl,
        "pg_stat_ssl reports the store's session as unencrypted"
    );
    let version = version.expect("pg_stat_ssl has no TLS version for an encrypted session");
    assert!(
        version.starts_with("TLSv1."),
        "unexpected TLS version {version}"
    );
    eprintln!("session protocol: {version}");

    server.stop().await;
}

#[tokio::test]
async fn config_setters_select_verify_full() {
    let server = tls_server().await;
    let tls = server.tls().expect("the server has TLS");

    // The URL has no TLS parameters, so the setters alone must make the session verified.
    let verified = config(server.url())
        .ssl_mode(PgSslMode::VerifyFull)
        .ssl_root_cert(tls.ca.cert_path());
    let store = connect(verified).await;
    store
        .append(&actor("bob"), ExpectedVersion::NoEvents, vec![event("set")])
        .await
        .expect("append over TLS failed");
    let (ssl, _) = session_tls(&store).await;
    assert!(
        ssl,
        "pg_stat_ssl reports the store's session as unencrypted"
    );

    // The same setters with a CA that did not issue the server's certificate must fail.
    let wrong_ca = CertificateAuthority::create(&tls.folder, "setter-wrong-ca");
    let wrong = config(server.url())
        .ssl_mode(PgSslMode::VerifyFull)
        .ssl_root_cert(wrong_ca.cert_path());
    let (err, took) = connect_err(wrong).await;
    assert_rejected(
        "verify-full with the wrong CA by setter",
        &err,
        took,
        "invalid peer certificate",
    );

    server.stop().await;
}

#[tokio::test]
async fn verify_full_without_trusted_ca_is_rejected() {
    let server = tls_server().await;
    let tls = server.tls().expect("the server has TLS");

    // Without sslrootcert the client trusts only the public web roots.
    let url = url_with(&server, "sslmode=verify-full");
    let (err, took) = connect_err(config(&url)).await;
    assert_rejected(
        "verify-full without a CA",
        &err,
        took,
        "invalid peer certificate",
    );
    let expected = format!(
        "connecting to PostgreSQL at 127.0.0.1:{} as postgres with sslmode=verify-full",
        server.port()
    );
    assert!(
        err.to_string().contains(&expected),
        "the error does not name the server and the TLS mode: {err}"
    );

    // A CA of its own that never issued the server's certificate.
    let wrong_ca = CertificateAuthority::create(&tls.folder, "wrong-ca");
    let url = url_with(
        &server,
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            path_str(wrong_ca.cert_path())
        ),
    );
    let (err, took) = connect_err(config(&url)).await;
    assert_rejected(
        "verify-full with the wrong CA",
        &err,
        took,
        "invalid peer certificate",
    );

    // verify-ca checks the chain too, so it must reject the wrong CA as well.
    let url = url_with(
        &server,
        &format!(
            "sslmode=verify-ca&sslrootcert={}",
            path_str(wrong_ca.cert_path())
        ),
    );
    let (err, took) = connect_err(config(&url)).await;
    assert_rejected(
        "verify-ca with the wrong CA",
        &err,
        took,
        "invalid peer certificate",
    );

    server.stop().await;
}

#[tokio::test]
async fn plaintext_is_rejected_by_hostssl_only_server() {
    let server = tls_server().await;

    let url = url_with(&server, "sslmode=disable");
    let (err, took) = connect_err(config(&url)).await;
    assert_rejected("sslmode=disable", &err, took, "no encryption");

    // The default mode, prefer, upgrades to TLS when the server offers it.
    let store = connect(config(server.url())).await;
    let (ssl, _) = session_tls(&store).await;
    assert!(ssl, "sslmode=prefer did not upgrade the session to TLS");
    store.close().await;

    // require encrypts without checking the certificate, so it needs no CA.
    let store = connect(config(&url_with(&server, "sslmode=require"))).await;
    let (ssl, _) = session_tls(&store).await;
    assert!(ssl, "sslmode=require did not encrypt the session");
    store.close().await;

    server.stop().await;
}

#[tokio::test]
async fn client_certificate_authenticates_role() {
    let server = tls_server().await;
    let tls = server.tls().expect("the server has TLS");
    let ca = path_str(tls.ca.cert_path()).to_owned();

    // The role may create the store's schema in the `postgres` database.
    let admin = connect(config(&url_with(
        &server,
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    )))
    .await;
    sqlx::query("CREATE ROLE aether_cert LOGIN")
        .execute(admin.pool())
        .await
        .expect("CREATE ROLE failed");
    sqlx::query("GRANT CREATE ON DATABASE postgres TO aether_cert")
        .execute(admin.pool())
        .await
        .expect("GRANT failed");
    admin.close().await;

    // The admin's store created the schema tls_test, which the role may not write to, so the
    // role's stores use a schema of their own.
    let cert_config = |url: &str| config(url).schema("tls_cert_test");
    let cert_url = |key: &CertifiedKey| {
        format!(
            "postgres://{CERT_USER}@127.0.0.1:{port}/postgres?sslmode=verify-full\
             &sslrootcert={ca}&sslcert={cert}&sslkey={key}",
            port = server.port(),
            cert = path_str(&key.cert),
            key = path_str(&key.key),
        )
    };

    // A certificate whose common name is the role logs in as that role.
    let good = tls.ca.issue_client(&tls.folder, "client-good", CERT_USER);
    let store = connect(cert_config(&cert_url(&good))).await;
    store
        .append(
            &actor("carol"),
            ExpectedVersion::NoEvents,
            vec![event("cert")],
        )
        .await
        .expect("append as the certificate's role failed");
    let (user, client_dn): (String, Option<String>) = sqlx::query_as(
        "SELECT current_user::text, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_one(store.pool())
    .await
    .expect("query of pg_stat_ssl failed");
    assert_eq!(user, CERT_USER);
    assert_eq!(client_dn.as_deref(), Some("/CN=aether_cert"));
    store.close().await;

    // No client certificate.
    let url = format!(
        "postgres://{CERT_USER}@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={ca}",
        server.port()
    );
    let (err, took) = connect_err(cert_config(&url)).await;
    assert_rejected(
        "no client certificate",
        &err,
        took,
        "requires a valid client certificate",
    );

    // A certificate of the right CA for another name.
    let other = tls
        .ca
        .issue_client(&tls.folder, "client-other", "someone_else");
    let (err, took) = connect_err(cert_config(&cert_url(&other))).await;
    assert_rejected(
        "client certificate for another role",
        &err,
        took,
        "certificate authentication failed",
    );

    // A certificate for the right name from a CA the server does not trust. The server ends
    // the TLS handshake with an alert, so the reason comes from the TLS library.
    // NOTE: the client sends its startup message right after its half of the TLS 1.3
    // handshake. If the server closed with that message unread, the client could see a
    // connection reset in place of the alert. No run on Linux has shown that so far.
    let stranger_ca = CertificateAuthority::create(&tls.folder, "stranger-ca");
    let stranger = stranger_ca.issue_client(&tls.folder, "client-stranger", CERT_USER);
    let (err, took) = connect_err(cert_config(&cert_url(&stranger))).await;
    assert_rejected(
        "client certificate from an untrusted CA",
        &err,
        took,
        "received fatal alert: UnknownCA",
    );

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_over_tls_is_unavailable_then_recovers() {
    let server = tls_server().await;
    let tls = server.tls().expect("the server has TLS");
    let url = url_with(
        &server,
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            path_str(tls.ca.cert_path())
        ),
    );
    let store = connect(
        config(&url)
            .max_connections(2)
            .acquire_timeout(Duration::from_millis(500)),
    )
    .await;
    let dave = actor("dave");
    let mut version = store
        .append(&dave, ExpectedVersion::NoEvents, vec![event("before")])
        .await
        .expect("append before the restart failed")
        .version;

    // Append while the server restarts. A session cut over TLS must count as an outage, which
    // callers retry, and not as a TLS failure, which they do not.
    let restarted = AtomicBool::new(false);
    let restart = async {
        let took = server.restart(Duration::from_secs(2)).await;
        restarted.store(true, Ordering::SeqCst);
        took
    };
    let appends = async {
        let started = Instant::now();
        let mut unavailable = 0usize;
        let mut acks_after_restart = 0usize;
        while acks_after_restart < 5 {
            assert!(
                started.elapsed() < WAIT,
                "no recovery within {WAIT:?} after the restart"
            );
            let after_restart = restarted.load(Ordering::SeqCst);
            match store
                .append(&dave, ExpectedVersion::Any, vec![event("during")])
                .await
            {
                Ok(outcome) => {
                    version = outcome.version;
                    if after_restart {
                        acks_after_restart += 1;
                    }
                }
                Err(err) if err.kind() == ErrorKind::Unavailable => {
                    unavailable += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!(
                    "append during the restart failed with {:?}: {}",
                    err.kind(),
                    chain(&err)
                ),
            }
        }
        unavailable
    };
    let (took, unavailable) = tokio::join!(restart, appends);
    eprintln!("restart took {took:?}, appends that saw Unavailable: {unavailable}");
    assert!(
        unavailable > 0,
        "no append saw Unavailable during the restart"
    );

    // The recovered session is encrypted again, and the last acknowledged version is stored.
    let (ssl, _) = session_tls(&store).await;
    assert!(ssl, "the session after the restart is unencrypted");
    let stored: Vec<_> =
        tokio::time::timeout(WAIT, store.read(&dave, Version::new(1)).try_collect())
            .await
            .expect("read timed out")
            .expect("read after the restart failed");
    assert_eq!(stored.last().map(|e| e.version), Some(version));

    store.close().await;
    server.stop().await;
}
