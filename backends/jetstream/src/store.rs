//! [`JetStreamStore`]: connecting, setting up the stream and bucket, and the trait impls that
//! hand each call to its module.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aether_core::{
    ActorRef, AppendOutcome, EventFilter, EventStore, EventStream, ExpectedVersion, NewEvent,
    Position, Snapshot, Snapshotter, StoreError, StoreLimits, Version,
};
use async_nats::jetstream::{self, kv, stream};
use async_nats::{Client, ConnectOptions};
use async_trait::async_trait;
use tracing::{info, warn};

use crate::config::{Auth, JetStreamConfig, Storage};
use crate::error::{ConnectError, MIN_SERVER_VERSION};
use crate::heads::Heads;
use crate::layout::Layout;

/// Bytes of every message reserved for the envelope's own fields and the headers, so that an
/// event of [`StoreLimits::max_event_bytes`] with ordinary metadata fits `max_payload`.
const LIMIT_RESERVE: usize = 8 * 1024;

/// An [`EventStore`] and [`Snapshotter`] on NATS JetStream. Cheap to clone: clones share one
/// connection and one head cache.
///
/// See the [crate documentation](crate) for the layout, the durability of each setting and the
/// limits.
#[derive(Clone)]
pub struct JetStreamStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) context: jetstream::Context,
    pub(crate) stream: stream::Stream,
    pub(crate) snapshots: kv::Store,
    pub(crate) snapshot_stream: stream::Stream,
    pub(crate) layout: Layout,
    pub(crate) heads: Heads,
    pub(crate) limits: StoreLimits,
    /// The server's `max_payload`: headers plus payload of one message, in bytes.
    pub(crate) max_payload: usize,
    /// Use of batched direct gets for per-actor reads: servers 2.11 and newer, unless the
    /// config disables it.
    pub(crate) batch_direct_get: bool,
    pub(crate) read_batch: usize,
    pub(crate) server_version: String,
    pub(crate) config: JetStreamConfig,
}

impl JetStreamStore {
    /// Connects, checks the server, and finds or creates the namespace's stream and snapshot
    /// bucket.
    ///
    /// An existing stream or bucket is used with its own storage and replica settings; a
    /// mismatch with the config is logged as a warning.
    ///
    /// # Errors
    ///
    /// [`ConnectError::InvalidConfig`], [`ConnectError::Credentials`] and
    /// [`ConnectError::TlsFile`] come before anything is sent. [`ConnectError::Connect`] means
    /// that no server responded, the server rejected the credentials or the TLS handshake
    /// failed. Then come [`ConnectError::UnsupportedServer`] for servers before 2.10,
    /// [`ConnectError::JetStreamDisabled`], and [`ConnectError::Setup`] when the stream or the
    /// bucket cannot be created (for example more replicas than servers).
    pub async fn connect(config: JetStreamConfig) -> Result<Self, ConnectError> {
        config.validate()?;
        let client = connect_client(&config).await?;

        let server = client.server_info();
        let version =
            parse_version(&server.version).ok_or_else(|| ConnectError::UnsupportedServer {
                server: server.server_name.clone(),
                version: server.version.clone(),
            })?;
        if version < MIN_SERVER_VERSION {
            return Err(ConnectError::UnsupportedServer {
                server: server.server_name,
                version: server.version,
            });
        }
        if !server.jetstream {
            return Err(ConnectError::JetStreamDisabled {
                server: server.server_name,
            });
        }
        let batch_direct_get = config.batch_direct_get && version >= (2, 11, 0);

        let context = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .max_ack_inflight(config.max_pending_appends)
            .backpressure_on_inflight(true)
            .build(client.clone());
        let layout = Layout::new(&config.namespace);
        let stream = ensure_stream(&context, &layout, &config).await?;
        let (snapshots, snapshot_stream) = ensure_bucket(&context, &layout, &config).await?;

        let max_payload = server.max_payload;
        let room = max_payload.saturating_sub(LIMIT_RESERVE);
        let limits = StoreLimits {
            max_event_bytes: room,
            max_append_bytes: room,
            max_snapshot_bytes: room,
        };
        info!(
            server = %server.server_name,
            version = %server.version,
            namespace = %config.namespace,
            max_payload,
            batch_direct_get,
            "connected to JetStream"
        );

        Ok(Self {
            inner: Arc::new(Inner {
                client,
                context,
                stream,
                snapshots,
                snapshot_stream,
                layout,
                heads: Heads::new(config.head_cache_capacity),
                limits,
                max_payload,
                batch_direct_get,
                read_batch: config.read_batch,
                server_version: server.version,
                config,
            }),
        })
    }

    /// Returns the underlying NATS client, for callers that share the connection.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Returns the JetStream context the store uses.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.context
    }

    /// Returns the name of the event stream, which is the namespace.
    pub fn stream_name(&self) -> &str {
        self.inner.layout.stream_name()
    }

    /// Returns the name of the snapshot bucket: `<namespace>_snapshots`.
    pub fn snapshot_bucket(&self) -> String {
        self.inner.layout.snapshot_bucket()
    }

    /// Returns the version of the server the store connected to first.
    pub fn server_version(&self) -> &str {
        &self.inner.server_version
    }

    /// Returns whether per-actor reads use batched direct gets (servers 2.11 and newer) rather
    /// than an ordered consumer.
    pub fn uses_batch_direct_get(&self) -> bool {
        self.inner.batch_direct_get
    }

    /// Returns the subject of `actor`'s events: `<namespace>.<kind>.<base64url id>`.
    pub fn subject_of(&self, actor: &ActorRef) -> String {
        self.inner.layout.subject(actor)
    }

    /// Deletes the namespace's stream and snapshot bucket with everything in them. Meant for
    /// tests and tools; the store is unusable afterwards.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] when the server refuses.
    pub async fn delete_namespace(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let stream = inner.layout.stream_name().to_owned();
        inner.context.delete_stream(&stream).await.map_err(|err| {
            crate::error::request_failed(format!("deleting stream {stream}"), err)
        })?;
        let bucket = inner.layout.snapshot_bucket();
        inner
            .context
            .delete_key_value(&bucket)
            .await
            .map_err(|err| {
                crate::error::request_failed(format!("deleting bucket {bucket}"), err)
            })?;
        Ok(())
    }
}

impl fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JetStreamStore")
            .field("namespace", &self.inner.config.namespace)
            .field("servers", &self.inner.config.servers)
            .field("server_version", &self.inner.server_version)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventStore for JetStreamStore {
    async fn append(
        &self,
        actor: &ActorRef,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        crate::append::append(&self.inner, actor, expected, events).await
    }

    fn read(&self, actor: &ActorRef, from: Version) -> EventStream {
        crate::read::read_actor(self.inner.clone(), actor.clone(), from)
    }

    async fn head(&self, actor: &ActorRef) -> Result<Version, StoreError> {
        let subject = self.inner.layout.subject(actor);
        let head = crate::append::fetch_head(&self.inner, actor, &subject).await?;
        Ok(head.version)
    }

    fn read_all(&self, after: Position, filter: EventFilter) -> EventStream {
        crate::read::read_all(self.inner.clone(), after, filter)
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream {
        crate::read::subscribe(self.inner.clone(), after, filter)
    }

    fn limits(&self) -> StoreLimits {
        self.inner.limits
    }
}

#[async_trait]
impl Snapshotter for JetStreamStore {
    async fn save_snapshot(
        &self,
        actor: &ActorRef,
        snapshot: Snapshot,
    ) -> Result<bool, StoreError> {
        crate::snapshots::save(&self.inner, actor, snapshot).await
    }

    async fn load_snapshot(&self, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError> {
        crate::snapshots::load(&self.inner, actor).await
    }
}

async fn connect_client(config: &JetStreamConfig) -> Result<Client, ConnectError> {
    let mut options = ConnectOptions::new();
    options = match &config.auth {
        Auth::None => options,
        Auth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.clone())
        }
        Auth::Token(token) => options.token(token.clone()),
        Auth::CredentialsFile(path) => {
            // Read here rather than through async-nats 0.52, which turns every read error into
            // `ErrorKind::Other` with the path inside its text.
            let failed = |source| ConnectError::Credentials {
                path: path.display().to_string(),
                source,
            };
            let contents = tokio::fs::read_to_string(path).await.map_err(failed)?;
            options.credentials(&contents).map_err(failed)?
        }
    };
    let tls = &config.tls;
    if tls.required {
        options = options.require_tls(true);
    }
    if tls.handshake_first {
        options = options.tls_first();
    }
    // async-nats reads the TLS files only during the handshake, and its error does not name
    // the file, so a missing or unreadable one is reported here.
    if let Some(roots) = &tls.root_certificates {
        check_readable("root certificates", roots).await?;
        options = options.add_root_certificates(roots.clone());
    }
    if let Some((cert, key)) = &tls.client_certificate {
        check_readable("client certificate", cert).await?;
        check_readable("client key", key).await?;
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    if let Some(name) = &config.connection_name {
        options = options.name(name);
    }
    options = options
        .connection_timeout(config.request_timeout)
        .request_timeout(Some(config.request_timeout));

    let servers: Vec<async_nats::ServerAddr> = config
        .servers
        .iter()
        .map(|url| {
            url.parse()
                .map_err(|err: std::io::Error| ConnectError::InvalidConfig {
                    field: "servers",
                    reason: format!("{url:?} is not a NATS URL: {err}"),
                })
        })
        .collect::<Result<_, _>>()?;
    options
        .connect(servers.as_slice())
        .await
        .map_err(|source| ConnectError::Connect {
            servers: config.servers.join(","),
            source: source.into(),
        })
}

/// Opens `path` to check that it can be read.
async fn check_readable(role: &'static str, path: &Path) -> Result<(), ConnectError> {
    tokio::fs::File::open(path)
        .await
        .map(drop)
        .map_err(|source| ConnectError::TlsFile {
            role,
            path: path.display().to_string(),
            source,
        })
}

fn storage_type(storage: Storage) -> stream::StorageType {
    match storage {
        Storage::File => stream::StorageType::File,
        Storage::Memory => stream::StorageType::Memory,
    }
}

async fn ensure_stream(
    context: &jetstream::Context,
    layout: &Layout,
    config: &JetStreamConfig,
) -> Result<stream::Stream, ConnectError> {
    let name = layout.stream_name().to_owned();
    let wanted = stream::Config {
        name: name.clone(),
        description: Some("aether actor events, one subject per actor".to_owned()),
        subjects: vec![layout.all_subjects()],
        storage: storage_type(config.storage),
        num_replicas: config.replicas,
        duplicate_window: config.duplicate_window,
        // Per-actor reads fetch messages with direct gets.
        allow_direct: true,
        // Deleting or purging messages would leave gaps in actor versions.
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    };
    let mut stream =
        context
            .get_or_create_stream(wanted)
            .await
            .map_err(|err| ConnectError::Setup {
                what: format!("stream {name}"),
                source: Box::new(err),
            })?;
    let info = stream.info().await.map_err(|err| ConnectError::Setup {
        what: format!("stream {name}"),
        source: Box::new(err),
    })?;
    let found = &info.config;
    if found.num_replicas != config.replicas || found.storage != storage_type(config.storage) {
        warn!(
            stream = %name,
            replicas = found.num_replicas,
            storage = ?found.storage,
            wanted_replicas = config.replicas,
            wanted_storage = ?config.storage,
            "existing stream differs from the config; using it as it is"
        );
    }
    if !found.allow_direct {
        return Err(ConnectError::Setup {
            what: format!("stream {name}"),
            source: "the existing stream has allow_direct disabled; enable it with `nats stream edit --allow-direct`".into(),
        });
    }
    Ok(stream)
}

async fn ensure_bucket(
    context: &jetstream::Context,
    layout: &Layout,
    config: &JetStreamConfig,
) -> Result<(kv::Store, stream::Stream), ConnectError> {
    let bucket = layout.snapshot_bucket();
    let setup_failed = |source: Box<dyn std::error::Error + Send + Sync>| ConnectError::Setup {
        what: format!("snapshot bucket {bucket}"),
        source,
    };
    let store = match context.get_key_value(&bucket).await {
        Ok(store) => store,
        Err(err) if err.kind() == jetstream::context::KeyValueErrorKind::GetBucket => context
            .create_key_value(kv::Config {
                bucket: bucket.clone(),
                description: "aether actor snapshots, newest per actor".to_owned(),
                history: 1,
                storage: storage_type(config.storage),
                num_replicas: config.replicas,
                ..Default::default()
            })
            .await
            .map_err(|err| setup_failed(Box::new(err)))?,
        Err(err) => return Err(setup_failed(Box::new(err))),
    };
    let snapshot_stream = context
        .get_stream(&store.stream_name)
        .await
        .map_err(|err| setup_failed(Box::new(err)))?;
    Ok((store, snapshot_stream))
}

/// Parses `major.minor.patch`, ignoring a suffix such as `-beta.1` after the patch number.
fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.trim_start_matches('v').splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch_text = parts.next()?;
    let digits = patch_text
        .find(|c: char| !c.is_ascii_digit())
        .map_or(patch_text, |end| &patch_text[..end]);
    let patch = digits.parse().ok()?;
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("v2.11.0-beta.2"), Some((2, 11, 0)));
        assert_eq!(parse_version("2.9"), None);
        assert_eq!(parse_version("two"), None);
        assert!(parse_version("2.9.25").unwrap() < MIN_SERVER_VERSION);
        assert!(parse_version("2.10.0").unwrap() >= MIN_SERVER_VERSION);
    }
}
