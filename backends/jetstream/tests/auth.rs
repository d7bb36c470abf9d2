//! Credentials and TLS against real `nats-server` processes on 127.0.0.1: user and password,
//! token, credentials files, server certificates from a throwaway CA, client certificates and
//! TLS-first handshakes.
//!
//! Each test starts its own server with the settings under test in its config file. Dropping
//! the server stops the process by its PID and removes its folder, also when the test panics.
//! Every connect, append and read is bounded by [`STEP_TIMEOUT`].

use std::error::Error as StdError;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aether_core::{ActorRef, EventStore, ExpectedVersion, NewEvent, StoreError, Version};
use aether_jetstream::{ConnectError, JetStreamConfig, JetStreamStore, Tls};
use aether_testkit::nats::{NatsOptions, NatsServer, start_process_node, unique_namespace};
use async_nats::ConnectErrorKind;
use futures::TryStreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// Bound on each connect, append and read of a test. It is well above [`REQUEST_TIMEOUT`], so
/// reaching it means that the store hung.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The stores' request timeout, which also bounds their connection attempts.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

const USER: &str = "ann";
const PASSWORD: &str = "correct-horse-7";
const TOKEN: &str = "t0ken-for-aether-tests";

// Servers ------------------------------------------------------------------------------------

/// Starts a single JetStream node whose config file contains `config`.
async fn server_with(config: &str) -> NatsServer {
    start_process_node(NatsOptions {
        extra_config: config.to_owned(),
        ..NatsOptions::default()
    })
    .await
}

fn user_password_config() -> String {
    format!("authorization {{\n  user: \"{USER}\"\n  password: \"{PASSWORD}\"\n}}")
}

fn token_config() -> String {
    format!("authorization {{\n  token: \"{TOKEN}\"\n}}")
}

/// Returns a `tls` block with the server certificate of `pki`. `verify` makes the server
/// require a client certificate signed by the CA. `handshake_first`, when given, is the value
/// of that setting. `true` makes the server expect the TLS handshake before it sends its INFO
/// message. A duration such as `"300ms"` makes it wait that long for a handshake before it
/// falls back to sending INFO first.
fn tls_config(pki: &Pki, verify: bool, handshake_first: Option<&str>) -> String {
    let mut block = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: {verify}\n",
        pki.server_cert.display(),
        pki.server_key.display(),
        pki.ca.display(),
    );
    if let Some(value) = handshake_first {
        block.push_str(&format!("  handshake_first: {value}\n"));
    }
    block.push('}');
    block
}

// Stores -------------------------------------------------------------------------------------

/// Settings for a namespace of its own on `server`.
fn config_for(server: &NatsServer) -> JetStreamConfig {
    JetStreamConfig::new(server.urls())
        .namespace(unique_namespace("auth"))
        .request_timeout(REQUEST_TIMEOUT)
}

/// Connects with `config`, failing the test when the connect does not finish in time.
async fn connect(config: JetStreamConfig) -> Result<JetStreamStore, ConnectError> {
    tokio::time::timeout(STEP_TIMEOUT, JetStreamStore::connect(config))
        .await
        .unwrap_or_else(|_| panic!("connect did not finish within {STEP_TIMEOUT:?}"))
}

/// Connects with `config`, expects a failure, and checks that it came before the request
/// timeout: a rejected connection must fail at once, not wait for a timeout.
async fn connect_err(config: JetStreamConfig) -> ConnectError {
    let started = Instant::now();
    let result = connect(config).await;
    let elapsed = started.elapsed();
    let Err(err) = result else {
        panic!("connect succeeded, expected a failure");
    };
    assert!(
        elapsed < REQUEST_TIMEOUT,
        "connect failed only after {elapsed:?}: {}",
        describe(&err)
    );
    err
}

/// Appends one event to a new actor and reads it back.
async fn assert_round_trip(store: &JetStreamStore) {
    let actor = ActorRef::parse("account", "auth-1").unwrap();
    let appended = tokio::time::timeout(
        STEP_TIMEOUT,
        store.append(
            &actor,
            ExpectedVersion::NoEvents,
            vec![NewEvent::new("Opened", "first")],
        ),
    )
    .await
    .expect("append did not finish in time")
    .expect("append failed");
    assert_eq!(appended.version, Version::new(1));

    let events = tokio::time::timeout(
        STEP_TIMEOUT,
        store.read(&actor, Version::new(1)).try_collect::<Vec<_>>(),
    )
    .await
    .expect("read did not finish in time")
    .expect("read failed");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "Opened");
    assert_eq!(events[0].payload.as_ref(), b"first");
}

/// Formats an error with its chain of sources, as an application prints it.
fn describe(err: &(dyn StdError + 'static)) -> String {
    aether_core::ErrorChain(err).to_string()
}

/// Returns the async-nats kind of a [`ConnectError::Connect`], failing the test for any other
/// variant.
fn connect_kind(err: &ConnectError) -> ConnectErrorKind {
    match err {
        ConnectError::Connect { source, .. } => source.kind(),
        other => panic!("expected ConnectError::Connect, got {}", describe(other)),
    }
}

/// Checks that `err` is a rejection of the credentials that a retry would not overcome.
fn assert_rejected_credentials(err: ConnectError) {
    let text = describe(&err);
    assert_eq!(
        connect_kind(&err),
        ConnectErrorKind::AuthorizationViolation,
        "{text}"
    );
    assert_eq!(
        text.matches("authorization violation").count(),
        1,
        "the cause should be named once: {text}"
    );
    let as_store: StoreError = err.into();
    assert!(!as_store.is_retryable(), "{}", describe(&as_store));
}

/// A listener on a free port of 127.0.0.1 that only records whether a client connected.
struct SilentListener {
    listener: TcpListener,
}

impl SilentListener {
    fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Self { listener }
    }

    fn url(&self) -> String {
        format!("nats://{}", self.listener.local_addr().unwrap())
    }

    /// Returns whether a connection is waiting. The kernel completes the TCP handshake
    /// without an `accept`, so a client that connected before this call is seen here.
    fn was_contacted(&self) -> bool {
        match self.listener.accept() {
            Ok(_) => true,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(err) => panic!("accept failed: {err}"),
        }
    }
}

// Certificates -------------------------------------------------------------------------------

/// PEM files of a throwaway CA, a server certificate for 127.0.0.1 and a client certificate,
/// both signed by the CA, and of a second CA that signed neither. The folder is removed on
/// drop.
struct Pki {
    folder: TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn generate() -> Self {
        let folder = tempfile::Builder::new()
            .prefix("aether-tls-")
            .tempdir()
            .unwrap();
        let write = |name: &str, pem: String| -> PathBuf {
            let path = folder.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };

        let ca = certificate_authority("aether test CA");
        let other = certificate_authority("aether unrelated CA");

        let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "aether test server");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &ca).unwrap();

        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "aether test client");
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client.signed_by(&client_key, &ca).unwrap();

        Self {
            ca: write("ca.pem", ca.pem()),
            other_ca: write("other-ca.pem", other.pem()),
            server_cert: write("server-cert.pem", server_cert.pem()),
            server_key: write("server-key.pem", server_key.serialize_pem()),
            client_cert: write("client-cert.pem", client_cert.pem()),
            client_key: write("client-key.pem", client_key.serialize_pem()),
            folder,
        }
    }

    fn missing_file(&self) -> PathBuf {
        self.folder.path().join("does-not-exist.pem")
    }
}

fn certificate_authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// TLS settings that require TLS and trust `roots`.
fn tls_trusting(roots: &Path) -> Tls {
    Tls {
        required: true,
        root_certificates: Some(roots.to_owned()),
        ..Tls::default()
    }
}

// User and password --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_password_right_ones_connect() {
    let server = server_with(&user_password_config()).await;
    let store = connect(config_for(&server).user_and_password(USER, PASSWORD))
        .await
        .unwrap_or_else(|err| panic!("connect failed: {}", describe(&err)));
    assert_round_trip(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_password_wrong_password_rejected() {
    let server = server_with(&user_password_config()).await;
    let err = connect_err(config_for(&server).user_and_password(USER, "wrong-password")).await;
    let text = describe(&err);
    assert!(
        text.starts_with(&format!(
            "failed to connect to NATS at {}",
            server.urls()[0]
        )),
        "{text}"
    );
    assert!(!text.contains("wrong-password"), "{text}");
    assert_rejected_credentials(err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_password_wrong_user_rejected() {
    let server = server_with(&user_password_config()).await;
    let err = connect_err(config_for(&server).user_and_password("bob", PASSWORD)).await;
    assert_rejected_credentials(err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_password_missing_rejected() {
    let server = server_with(&user_password_config()).await;
    let err = connect_err(config_for(&server)).await;
    assert_rejected_credentials(err);
}

// Token --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_right_one_connects() {
    let server = server_with(&token_config()).await;
    let store = connect(config_for(&server).token(TOKEN))
        .await
        .unwrap_or_else(|err| panic!("connect failed: {}", describe(&err)));
    assert_round_trip(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_wrong_one_rejected() {
    let server = server_with(&token_config()).await;
    let err = connect_err(config_for(&server).token("not-the-token")).await;
    assert!(!describe(&err).contains("not-the-token"), "{err:?}");
    assert_rejected_credentials(err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_missing_rejected() {
    let server = server_with(&token_config()).await;
    let err = connect_err(config_for(&server)).await;
    assert_rejected_credentials(err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_against_user_password_server_rejected() {
    let server = server_with(&user_password_config()).await;
    let err = connect_err(config_for(&server).token(TOKEN)).await;
    assert_rejected_credentials(err);
}

// Credentials file ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_file_missing_fails_before_connecting() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("nobody.creds");
    let listener = SilentListener::bind();

    let config = JetStreamConfig::new([listener.url()])
        .namespace(unique_namespace("auth"))
        .request_timeout(REQUEST_TIMEOUT)
        .credentials_file(&path);
    let err = connect_err(config).await;

    let text = describe(&err);
    assert!(text.contains(&path.display().to_string()), "{text}");
    let ConnectError::Credentials {
        path: reported,
        source,
    } = &err
    else {
        panic!("expected ConnectError::Credentials, got {text}");
    };
    assert_eq!(reported, &path.display().to_string());
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{text}");
    assert!(!listener.was_contacted(), "the store connected: {text}");
    let as_store: StoreError = err.into();
    assert!(!as_store.is_retryable(), "{}", describe(&as_store));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_file_malformed_fails_before_connecting() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("garbage.creds");
    std::fs::write(&path, "this is not a NATS credentials file\n").unwrap();
    let listener = SilentListener::bind();

    let config = JetStreamConfig::new([listener.url()])
        .namespace(unique_namespace("auth"))
        .request_timeout(REQUEST_TIMEOUT)
        .credentials_file(&path);
    let err = connect_err(config).await;

    let text = describe(&err);
    assert!(
        matches!(err, ConnectError::Credentials { .. }),
        "expected ConnectError::Credentials, got {text}"
    );
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(!listener.was_contacted(), "the store connected: {text}");
}

// TLS ----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_ca_connects() {
    let pki = Pki::generate();
    let server = server_with(&tls_config(&pki, false, None)).await;
    let store = connect(config_for(&server).tls(tls_trusting(&pki.ca)))
        .await
        .unwrap_or_else(|err| panic!("connect failed: {}", describe(&err)));
    assert!(store.client().server_info().tls_required);
    assert_round_trip(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_system_roots_rejects_server() {
    let pki = Pki::generate();
    let server = server_with(&tls_config(&pki, false, None)).await;
    let tls = Tls {
        required: true,
        ..Tls::default()
    };
    let err = connect_err(config_for(&server).tls(tls)).await;
    let text = describe(&err);
    connect_kind(&err);
    assert!(text.contains("invalid peer certificate"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert_eq!(text.matches("UnknownIssuer").count(), 1, "{text}");
    let as_store: StoreError = err.into();
    assert!(!as_store.is_retryable(), "{}", describe(&as_store));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_other_ca_rejects_server() {
    let pki = Pki::generate();
    let server = server_with(&tls_config(&pki, false, None)).await;
    let err = connect_err(config_for(&server).tls(tls_trusting(&pki.other_ca))).await;
    let text = describe(&err);
    connect_kind(&err);
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_required_rejects_plain_server() {
    let pki = Pki::generate();
    let server = server_with("").await;
    let err = connect_err(config_for(&server).tls(tls_trusting(&pki.ca))).await;

    // The client starts a handshake after the plain INFO message, and rustls cannot parse the
    // server's reply as TLS.
    let text = describe(&err);
    assert_eq!(connect_kind(&err), ConnectErrorKind::Io, "{text}");
    let as_store: StoreError = err.into();
    assert!(!as_store.is_retryable(), "{}", describe(&as_store));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_missing_root_file_fails_before_connecting() {
    let pki = Pki::generate();
    let missing = pki.missing_file();
    let listener = SilentListener::bind();

    let config = JetStreamConfig::new([listener.url()])
        .namespace(unique_namespace("auth"))
        .request_timeout(REQUEST_TIMEOUT)
        .tls(tls_trusting(&missing));
    let err = connect_err(config).await;

    let text = describe(&err);
    let ConnectError::TlsFile { role, path, source } = &err else {
        panic!("expected ConnectError::TlsFile, got {text}");
    };
    assert_eq!(*role, "root certificates");
    assert_eq!(path, &missing.display().to_string());
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(text.contains(&missing.display().to_string()), "{text}");
    assert!(!listener.was_contacted(), "the store connected: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_missing_client_key_fails_before_connecting() {
    let pki = Pki::generate();
    let missing = pki.missing_file();
    let listener = SilentListener::bind();

    let tls = Tls {
        client_certificate: Some((pki.client_cert.clone(), missing.clone())),
        ..tls_trusting(&pki.ca)
    };
    let config = JetStreamConfig::new([listener.url()])
        .namespace(unique_namespace("auth"))
        .request_timeout(REQUEST_TIMEOUT)
        .tls(tls);
    let err = connect_err(config).await;

    let text = describe(&err);
    assert!(
        matches!(
            err,
            ConnectError::TlsFile {
                role: "client key",
                ..
            }
        ),
        "expected ConnectError::TlsFile for the client key, got {text}"
    );
    assert!(text.contains(&missing.display().to_string()), "{text}");
    assert!(!listener.was_contacted(), "the store connected: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verify_rejects_store_without_client_certificate() {
    let pki = Pki::generate();
    let server = server_with(&tls_config(&pki, true, None)).await;
    let err = connect_err(config_for(&server).tls(tls_trusting(&pki.ca))).await;

    let text = describe(&err);
    connect_kind(&err);
    assert!(text.contains("CertificateRequired"), "{text}");
    let as_store: StoreError = err.into();
    assert!(!as_store.is_retryable(), "{}", describe(&as_store));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verify_accepts_client_certificate() {
    let pki = Pki::generate();
    let server = server_with(&tls_config(&pki, true, None)).await;
    let tls = Tls {
        client_certificate: Some((pki.client_cert.clone(), pki.client_key.clone())),
        ..tls_trusting(&pki.ca)
    };
    let store = connect(config_for(&server).tls(tls))
        .await
        .unwrap_or_else(|err| panic!("connect failed: {}", describe(&err)));
    assert_round_trip(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_first_connects() {
    let pki = Pki::generate();
    let server = server_with(&tls_config(&pki, false, Some("true"))).await;
    let tls = Tls {
        handshake_first: true,
        ..tls_trusting(&pki.ca)
    };
    let store = connect(config_for(&server).tls(tls))
        .await
        .unwrap_or_else(|err| panic!("connect failed: {}", describe(&err)));
    assert_round_trip(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_first_server_rejects_late_handshake() {
    let pki = Pki::generate();
    let server = server_with(&tls_config(&pki, false, Some("true"))).await;

    // The store waits for an INFO message that the server never sends, and the server closes
    // the connection when its TLS timeout (2 seconds by default in nats-server 2.15) passes
    // without a handshake.
    let err = connect_err(config_for(&server).tls(tls_trusting(&pki.ca))).await;
    let text = describe(&err);
    assert_eq!(connect_kind(&err), ConnectErrorKind::Io, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_first_rejected_by_ordinary_server() {
    let pki = Pki::generate();
    let server = server_with(&tls_config(&pki, false, None)).await;
    let tls = Tls {
        handshake_first: true,
        ..tls_trusting(&pki.ca)
    };

    // The server's plain INFO message reaches rustls as the reply to its handshake.
    let err = connect_err(config_for(&server).tls(tls)).await;
    let text = describe(&err);
    assert_eq!(connect_kind(&err), ConnectErrorKind::Io, "{text}");
    let as_store: StoreError = err.into();
    assert!(!as_store.is_retryable(), "{}", describe(&as_store));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_first_fallback_accepts_both() {
    // With a duration, the server waits that long for a handshake and then sends INFO first.
    let pki = Pki::generate();
    let server = server_with(&tls_config(&pki, false, Some("\"300ms\""))).await;
    let first = Tls {
        handshake_first: true,
        ..tls_trusting(&pki.ca)
    };
    let store = connect(config_for(&server).tls(first))
        .await
        .unwrap_or_else(|err| panic!("connect with handshake_first failed: {}", describe(&err)));
    assert_round_trip(&store).await;

    let store = connect(config_for(&server).tls(tls_trusting(&pki.ca)))
        .await
        .unwrap_or_else(|err| panic!("connect without handshake_first failed: {}", describe(&err)));
    assert_round_trip(&store).await;
}
