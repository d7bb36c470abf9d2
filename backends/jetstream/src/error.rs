//! Connection errors, and the mapping of async-nats failures onto [`StoreError`] kinds.

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, Instant};

use aether_core::{BoxError, StoreError};
use async_nats::jetstream;

/// The backend name that [`StoreError::Backend`] carries.
pub(crate) const BACKEND: &str = "jetstream";

/// Lowest server version this crate accepts. Older servers let two concurrent conditional
/// publishes to one subject both succeed in a cluster, and lack multi-subject consumer filters.
pub const MIN_SERVER_VERSION: (u64, u64, u64) = (2, 10, 0);

/// A failure of [`JetStreamStore::connect`](crate::JetStreamStore::connect).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A setting is invalid. Nothing was sent.
    #[error("invalid JetStream config: {field}: {reason}")]
    InvalidConfig {
        /// The setting at fault.
        field: &'static str,
        /// The problem with it.
        reason: String,
    },

    /// The credentials file could not be read or parsed. Nothing was sent.
    #[error("failed to read NATS credentials file {path}")]
    Credentials {
        /// The file's path.
        path: String,
        /// The read or parse error.
        #[source]
        source: std::io::Error,
    },

    /// A TLS file of the config could not be read. Nothing was sent.
    #[error("failed to read the TLS {role} file {path}")]
    TlsFile {
        /// The file's role: `root certificates`, `client certificate` or `client key`.
        role: &'static str,
        /// The file's path.
        path: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },

    /// No server could be reached, the server rejected the credentials, or the TLS handshake
    /// failed.
    #[error("failed to connect to NATS at {servers}")]
    Connect {
        /// The server URLs tried, comma separated.
        servers: String,
        /// The client's error.
        #[source]
        source: ConnectFailure,
    },

    /// The server is older than [`MIN_SERVER_VERSION`] or reports a version that does not parse.
    #[error(
        "NATS server {server} runs version {version:?}; aether-jetstream needs 2.10.0 or newer"
    )]
    UnsupportedServer {
        /// The server's name.
        server: String,
        /// The version the server reported.
        version: String,
    },

    /// The server runs without JetStream.
    #[error("NATS server {server} has JetStream disabled; start it with -js or a jetstream block")]
    JetStreamDisabled {
        /// The server's name.
        server: String,
    },

    /// The stream or the snapshot bucket could not be found or created.
    #[error("failed to set up {what}")]
    Setup {
        /// The stream or bucket, by name.
        what: String,
        /// The server's error.
        #[source]
        source: BoxError,
    },
}

/// The async-nats error behind [`ConnectError::Connect`].
///
/// An async-nats error prints the text of its source after its own and also returns that
/// source from [`source`](StdError::source), so printing the whole chain of sources would
/// repeat each cause. This wrapper prints the same text, without a source text that only
/// repeats the kind, and its `source` skips the level already printed.
#[derive(Debug)]
pub struct ConnectFailure(async_nats::ConnectError);

impl ConnectFailure {
    /// Returns the kind of failure, such as `AuthorizationViolation` and `Authentication` for
    /// rejected credentials, `Tls`, `TimedOut` or `Io`.
    pub fn kind(&self) -> async_nats::ConnectErrorKind {
        self.0.kind()
    }

    /// Returns the async-nats error.
    pub fn get_ref(&self) -> &async_nats::ConnectError {
        &self.0
    }

    /// Returns whether a later connect with the same settings may succeed. Rejected
    /// credentials and failed TLS handshakes are not transient.
    pub fn is_transient(&self) -> bool {
        use async_nats::ConnectErrorKind as Kind;
        match self.kind() {
            Kind::AuthorizationViolation | Kind::Authentication | Kind::Tls => false,
            // A failed handshake reaches async-nats 0.52 as an I/O error that carries the
            // rustls error.
            _ => !self.has_tls_cause(),
        }
    }

    fn has_tls_cause(&self) -> bool {
        let mut current = self.0.source();
        while let Some(err) = current {
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<async_nats::rustls::Error>())
            {
                return true;
            }
            if err.is::<async_nats::rustls::Error>() {
                return true;
            }
            current = err.source();
        }
        false
    }
}

impl From<async_nats::ConnectError> for ConnectFailure {
    fn from(err: async_nats::ConnectError) -> Self {
        Self(err)
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.0.kind().to_string();
        let Some(source) = self.0.source() else {
            return f.write_str(&kind);
        };
        // async-nats 0.52 wraps a rejected login as kind "authorization violation" with the
        // source "nats: authorization violation".
        let detail = source.to_string();
        if detail.to_lowercase().contains(&kind.to_lowercase()) {
            f.write_str(&kind)
        } else {
            write!(f, "{kind}: {detail}")
        }
    }
}

impl StdError for ConnectFailure {
    /// Returns the source of the async-nats error's source, whose text this error's message
    /// already contains.
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()?.source()
    }
}

impl From<ConnectError> for StoreError {
    /// Maps a connection failure that a retry may overcome (no server reached, timeout) or a
    /// setup timeout to [`StoreError::Unavailable`], and any other failure, such as rejected
    /// credentials or a failed TLS handshake, to [`StoreError::Backend`].
    fn from(err: ConnectError) -> Self {
        let transient = match &err {
            ConnectError::Connect { source, .. } => source.is_transient(),
            ConnectError::Setup { source, .. } => is_transient(source.as_ref()),
            _ => false,
        };
        if transient {
            StoreError::unavailable("connecting to JetStream", err)
        } else {
            StoreError::backend(BACKEND, "connecting to JetStream", err)
        }
    }
}

/// Maps a failed server call onto [`StoreError::Unavailable`] when retrying may help (timeouts,
/// lost connections, no responders, a cluster without a leader) and [`StoreError::Backend`]
/// otherwise. `operation` describes what was being done, naming the actor where there is one.
pub(crate) fn request_failed<E>(operation: impl Into<String>, err: E) -> StoreError
where
    E: StdError + Send + Sync + 'static,
{
    if is_transient(&err) {
        StoreError::unavailable(operation, err)
    } else {
        StoreError::backend(BACKEND, operation, err)
    }
}

/// Pauses between requests that no server responded to, doubling from 10 ms up to 250 ms, until
/// the request timeout has passed since the first one.
pub(crate) struct UnroutedRetry {
    started: Instant,
    timeout: Duration,
    pause: Duration,
}

impl UnroutedRetry {
    const FIRST_PAUSE: Duration = Duration::from_millis(10);
    const MAX_PAUSE: Duration = Duration::from_millis(250);

    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            started: Instant::now(),
            timeout,
            pause: Self::FIRST_PAUSE,
        }
    }

    /// Sleeps before the next try. Returns `false` without sleeping when that try would start
    /// after the timeout.
    pub(crate) async fn pause(&mut self) -> bool {
        if self.started.elapsed() + self.pause >= self.timeout {
            return false;
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(Self::MAX_PAUSE);
        true
    }
}

/// Returns whether `err` or one of its sources reports that no server responded to a request.
/// Then nothing was done, because the stream is not reachable from this connection yet.
pub(crate) fn is_unrouted(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(publish) = err.downcast_ref::<jetstream::context::PublishError>() {
            // async-nats reports a publish without responders as `StreamNotFound` (0.52).
            return publish.kind() == jetstream::context::PublishErrorKind::StreamNotFound;
        }
        if let Some(request) = err.downcast_ref::<async_nats::RequestError>() {
            return request.kind() == async_nats::RequestErrorKind::NoResponders;
        }
        if let Some(request) = err.downcast_ref::<jetstream::context::RequestError>() {
            return request.kind() == jetstream::context::RequestErrorKind::NoResponders;
        }
        if err.to_string().contains("no responders") {
            return true;
        }
        current = err.source();
    }
    false
}

/// Returns whether `err` or one of its sources is a failure that a later retry may not see.
pub(crate) fn is_transient(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(api) = err.downcast_ref::<jetstream::Error>() {
            // 503: no leader or JetStream not ready yet; 408: the server gave up waiting.
            return matches!(api.code(), 503 | 408)
                || api.error_code() == jetstream::ErrorCode::CLUSTER_NOT_AVAILABLE;
        }
        if let Some(publish) = err.downcast_ref::<jetstream::context::PublishError>() {
            use jetstream::context::PublishErrorKind as Kind;
            if matches!(
                publish.kind(),
                Kind::TimedOut | Kind::BrokenPipe | Kind::StreamNotFound | Kind::MaxAckPending
            ) {
                return true;
            }
        }
        if let Some(request) = err.downcast_ref::<async_nats::RequestError>() {
            use async_nats::RequestErrorKind as Kind;
            if matches!(request.kind(), Kind::TimedOut | Kind::NoResponders) {
                return true;
            }
        }
        if let Some(request) = err.downcast_ref::<jetstream::context::RequestError>() {
            use jetstream::context::RequestErrorKind as Kind;
            if matches!(request.kind(), Kind::TimedOut | Kind::NoResponders) {
                return true;
            }
        }
        if err.is::<std::io::Error>() || err.is::<tokio::time::error::Elapsed>() {
            return true;
        }
        // Many async-nats error kinds have their own `TimedOut` variant, whose message starts
        // with "timed out", "request timed out" or "jetstream request timed out" (0.52).
        let text = err.to_string();
        if text.starts_with("timed out")
            || text.starts_with("request timed out")
            || text.starts_with("jetstream request timed out")
            || text.contains("no responders")
        {
            return true;
        }
        current = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_timeout_is_unavailable() {
        let err =
            jetstream::context::PublishError::new(jetstream::context::PublishErrorKind::TimedOut);
        let mapped = request_failed("appending to k/1", err);
        assert!(mapped.is_retryable(), "{mapped}");
    }

    #[test]
    fn publish_without_responders_is_unrouted() {
        use jetstream::context::{PublishError, PublishErrorKind};
        assert!(is_unrouted(&PublishError::new(
            PublishErrorKind::StreamNotFound
        )));
        assert!(!is_unrouted(&PublishError::new(PublishErrorKind::TimedOut)));
        let request = async_nats::RequestError::new(async_nats::RequestErrorKind::NoResponders);
        assert!(is_unrouted(&request));
        let timed_out = async_nats::RequestError::new(async_nats::RequestErrorKind::TimedOut);
        assert!(!is_unrouted(&timed_out));
    }

    #[test]
    fn other_publish_error_is_backend() {
        let err =
            jetstream::context::PublishError::new(jetstream::context::PublishErrorKind::Other);
        let mapped = request_failed("appending to k/1", err);
        assert_eq!(mapped.kind(), aether_core::ErrorKind::Backend);
    }

    /// Formats `err` with its chain of sources, as an application prints it.
    fn describe(err: &(dyn StdError + 'static)) -> String {
        aether_core::ErrorChain(err).to_string()
    }

    fn connect_failed(source: async_nats::ConnectError) -> ConnectError {
        ConnectError::Connect {
            servers: "nats://127.0.0.1:4222".to_owned(),
            source: source.into(),
        }
    }

    #[test]
    fn connect_error_names_rejection_once() {
        let rejected = || {
            async_nats::ConnectError::with_source(
                async_nats::ConnectErrorKind::AuthorizationViolation,
                async_nats::ServerError::AuthorizationViolation,
            )
        };
        // The async-nats error alone repeats its cause when its chain is printed, even with
        // the exact repeats left out.
        let raw = describe(&rejected());
        assert!(raw.matches("authorization violation").count() >= 2, "{raw}");

        let err = connect_failed(rejected());
        assert_eq!(
            describe(&err),
            "failed to connect to NATS at nats://127.0.0.1:4222: authorization violation"
        );
        let store: StoreError = err.into();
        assert_eq!(store.kind(), aether_core::ErrorKind::Backend);
    }

    #[test]
    fn connect_error_names_tls_failure_once() {
        use async_nats::rustls;
        let handshake = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let err = connect_failed(async_nats::ConnectError::with_source(
            async_nats::ConnectErrorKind::Io,
            handshake,
        ));
        assert_eq!(
            describe(&err),
            "failed to connect to NATS at nats://127.0.0.1:4222: IO error: invalid peer \
             certificate: UnknownIssuer"
        );
        let store: StoreError = err.into();
        assert_eq!(store.kind(), aether_core::ErrorKind::Backend);
    }

    #[test]
    fn unreachable_server_is_unavailable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = connect_failed(async_nats::ConnectError::with_source(
            async_nats::ConnectErrorKind::Io,
            refused,
        ));
        assert_eq!(
            describe(&err),
            "failed to connect to NATS at nats://127.0.0.1:4222: IO error: connection refused"
        );
        let store: StoreError = err.into();
        assert!(store.is_retryable(), "{store}");

        let err = connect_failed(async_nats::ConnectError::new(
            async_nats::ConnectErrorKind::TimedOut,
        ));
        assert_eq!(
            describe(&err),
            "failed to connect to NATS at nats://127.0.0.1:4222: timed out"
        );
        let store: StoreError = err.into();
        assert!(store.is_retryable(), "{store}");
    }

    #[test]
    fn invalid_config_is_backend_store_error() {
        let err = ConnectError::InvalidConfig {
            field: "replicas",
            reason: "0 is outside 1..=5".to_owned(),
        };
        let store: StoreError = err.into();
        assert_eq!(store.kind(), aether_core::ErrorKind::Backend);
    }
}
