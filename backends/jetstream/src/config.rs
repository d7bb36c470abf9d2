//! Connection and layout settings of a [`JetStreamStore`](crate::JetStreamStore).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::ConnectError;

/// Maximum namespace length, in bytes. The snapshot bucket's stream name adds 13 bytes.
pub const MAX_NAMESPACE_LEN: usize = 64;

/// Storage medium of a stream's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// On disk: the stream survives a server restart. The default.
    #[default]
    File,
    /// In memory: lost when the server stops. For tests and caches.
    Memory,
}

/// Credentials the client presents to the server.
#[derive(Clone, Default)]
pub enum Auth {
    /// No credentials. The default.
    #[default]
    None,
    /// A user name and password.
    UserPassword {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// A shared token.
    Token(String),
    /// A `.creds` file holding a user JWT and its NKey seed.
    CredentialsFile(PathBuf),
}

impl fmt::Debug for Auth {
    /// Prints the kind of credentials and never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::CredentialsFile(path) => f.debug_tuple("CredentialsFile").field(path).finish(),
        }
    }
}

/// TLS settings. Without any of them the connection uses TLS only when the server requires it.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// Refuse to connect without TLS. Default: `false`.
    pub required: bool,
    /// Start TLS before the server's greeting; the server needs `handshake_first`.
    /// Default: `false`.
    pub handshake_first: bool,
    /// PEM file of the certificate authorities that sign the server's certificate. Default:
    /// the system's roots.
    pub root_certificates: Option<PathBuf>,
    /// PEM files of a client certificate and its private key, for servers that verify clients.
    /// Default: none.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

/// Settings of a [`JetStreamStore`](crate::JetStreamStore). Every setter documents its default.
///
/// ```
/// use std::time::Duration;
/// use aether_jetstream::{JetStreamConfig, Storage};
///
/// let config = JetStreamConfig::new(["nats://127.0.0.1:4222"])
///     .namespace("shop")
///     .replicas(3)
///     .storage(Storage::File)
///     .request_timeout(Duration::from_secs(5));
/// assert_eq!(config.namespace_name(), "shop");
/// ```
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    pub(crate) servers: Vec<String>,
    pub(crate) auth: Auth,
    pub(crate) tls: Tls,
    pub(crate) namespace: String,
    pub(crate) storage: Storage,
    pub(crate) replicas: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) connection_name: Option<String>,
    pub(crate) max_pending_appends: usize,
    pub(crate) read_batch: usize,
    pub(crate) duplicate_window: Duration,
    pub(crate) head_cache_capacity: usize,
    pub(crate) batch_direct_get: bool,
}

impl JetStreamConfig {
    /// Settings for the given server URLs, such as `nats://127.0.0.1:4222`. The client connects
    /// to one of them and fails over to the others.
    pub fn new<I, S>(servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            servers: servers.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Replaces the server URLs. Default: `nats://127.0.0.1:4222`.
    pub fn servers<I, S>(mut self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.servers = servers.into_iter().map(Into::into).collect();
        self
    }

    /// Authenticates with a user name and password. Default: no credentials.
    pub fn user_and_password(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.auth = Auth::UserPassword {
            user: user.into(),
            password: password.into(),
        };
        self
    }

    /// Authenticates with a token. Default: no credentials.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }

    /// Authenticates with a `.creds` file, read at connect time. Default: no credentials.
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth = Auth::CredentialsFile(path.into());
        self
    }

    /// Replaces the TLS settings. Default: [`Tls::default`], TLS only when the server requires it.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Names the stream (`<namespace>`), the subjects (`<namespace>.<kind>.<id>`) and the
    /// snapshot bucket (`<namespace>_snapshots`). 1 to [`MAX_NAMESPACE_LEN`] bytes of ASCII
    /// letters, digits, `_` and `-`. Default: `aether`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Storage of the stream and bucket when this store creates them. Default: [`Storage::File`].
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// Replicas of the stream and bucket when this store creates them, 1 to 5. Default: 1. Use 3
    /// in a cluster so that acknowledged appends survive the loss of one server.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Bound on each server request and publish acknowledgement; an append that gets no reply
    /// in time fails with `Unavailable`. Default: 10 seconds.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Name of the connection as the server's monitoring shows it. Default: none.
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = Some(name.into());
        self
    }

    /// Maximum appends published and waiting for their acknowledgement at once; further
    /// appends wait for a slot. Default: 10,000.
    pub fn max_pending_appends(mut self, max: usize) -> Self {
        self.max_pending_appends = max;
        self
    }

    /// Messages fetched by the batched direct get that starts a read of one actor. A longer
    /// history continues through an ordered consumer. Default: 256.
    pub fn read_batch(mut self, messages: usize) -> Self {
        self.read_batch = messages;
        self
    }

    /// Sets how long the stream remembers message ids, and so how long the server recognises a
    /// retried append as a duplicate, when this store creates the stream. Default: 2 minutes.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Number of actors whose last stream sequence and version are cached. When more are
    /// cached, the entries not in use are dropped and fetched again on demand. Default: 100,000.
    pub fn head_cache_capacity(mut self, actors: usize) -> Self {
        self.head_cache_capacity = actors;
        self
    }

    /// Reads one actor with batched direct gets when the server supports them (2.11 and
    /// newer); with `false`, or on older servers, through an ordered consumer. Default: `true`.
    pub fn batch_direct_get(mut self, enabled: bool) -> Self {
        self.batch_direct_get = enabled;
        self
    }

    /// The namespace.
    pub fn namespace_name(&self) -> &str {
        &self.namespace
    }

    /// Checks the settings before anything is sent.
    pub(crate) fn validate(&self) -> Result<(), ConnectError> {
        let invalid =
            |field: &'static str, reason: String| ConnectError::InvalidConfig { field, reason };
        if self.servers.is_empty() {
            return Err(invalid("servers", "no server URL given".to_owned()));
        }
        let namespace = &self.namespace;
        if namespace.is_empty() || namespace.len() > MAX_NAMESPACE_LEN {
            return Err(invalid(
                "namespace",
                format!(
                    "{namespace:?} is {} bytes long, expected 1 to {MAX_NAMESPACE_LEN}",
                    namespace.len()
                ),
            ));
        }
        if let Some(ch) = namespace
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(invalid(
                "namespace",
                format!(
                    "{namespace:?} contains {ch:?}; only ASCII letters, digits, '_' and '-' are allowed"
                ),
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(invalid(
                "replicas",
                format!("{} is outside 1..=5", self.replicas),
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout", "must be above zero".to_owned()));
        }
        if self.max_pending_appends == 0 || self.read_batch == 0 || self.head_cache_capacity == 0 {
            return Err(invalid(
                "max_pending_appends, read_batch, head_cache_capacity",
                "must be above zero".to_owned(),
            ));
        }
        Ok(())
    }
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        Self {
            servers: vec!["nats://127.0.0.1:4222".to_owned()],
            auth: Auth::None,
            tls: Tls::default(),
            namespace: "aether".to_owned(),
            storage: Storage::File,
            replicas: 1,
            request_timeout: Duration::from_secs(10),
            connection_name: None,
            max_pending_appends: 10_000,
            read_batch: 256,
            duplicate_window: Duration::from_secs(120),
            head_cache_capacity: 100_000,
            batch_direct_get: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        JetStreamConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_namespaces_are_rejected() {
        for namespace in ["", "a.b", "a b", "a*", "a>", "ü", &"n".repeat(65)] {
            let err = JetStreamConfig::default()
                .namespace(namespace)
                .validate()
                .unwrap_err();
            assert!(
                err.to_string().contains("namespace"),
                "{namespace:?}: {err}"
            );
        }
    }

    #[test]
    fn bad_numbers_are_rejected() {
        assert!(JetStreamConfig::default().replicas(0).validate().is_err());
        assert!(JetStreamConfig::default().replicas(6).validate().is_err());
        assert!(JetStreamConfig::default().read_batch(0).validate().is_err());
        assert!(
            JetStreamConfig::new(Vec::<String>::new())
                .validate()
                .is_err()
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let config = JetStreamConfig::default().user_and_password("ann", "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
        let config = JetStreamConfig::default().token("s3cret");
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
