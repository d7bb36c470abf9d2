//! Connection, pool and batching settings of a [`PostgresStore`](crate::PostgresStore).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use aether_core::StoreLimits;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// Maximum length in bytes of a schema name for [`PostgresConfig::schema`]. PostgreSQL allows 63
/// bytes per identifier, and the notification channel adds a 14-byte prefix to the schema name.
pub const MAX_SCHEMA_LEN: usize = 48;

/// Settings of a [`PostgresStore`](crate::PostgresStore). Every setter documents its default.
///
/// ```
/// use std::time::Duration;
/// use aether_postgres::PostgresConfig;
///
/// let config = PostgresConfig::from_url("postgres://app@127.0.0.1:5432/app?sslmode=require")?
///     .max_connections(20)
///     .acquire_timeout(Duration::from_secs(2))
///     .schema("orders");
/// assert_eq!(config.get_max_connections(), 20);
/// # Ok::<(), aether_postgres::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    pub(crate) connect: PgConnectOptions,
    pub(crate) max_connections: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) schema: Option<String>,
    pub(crate) migrate: bool,
    pub(crate) limits: StoreLimits,
    pub(crate) page_size: usize,
    pub(crate) max_batch_events: usize,
    pub(crate) committers: usize,
    pub(crate) poll_interval: Duration,
}

impl PostgresConfig {
    /// Settings for the server and database named by a `postgres://` URL. TLS is chosen by the
    /// URL's `sslmode` parameter (`disable`, `prefer` (the default), `require`, `verify-ca`,
    /// `verify-full`) together with `sslrootcert`, `sslcert` and `sslkey`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnsupportedScheme`] when the URL starts with a scheme other than
    /// `postgres://` or `postgresql://`, and [`ConfigError::InvalidUrl`] when it cannot be
    /// parsed.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        // sqlx 0.9 parses any scheme as a PostgreSQL URL, so `mysql://` would only fail later
        // with a pool timeout.
        if let Some((scheme, _)) = url.split_once("://")
            && !["postgres", "postgresql"].contains(&scheme.to_ascii_lowercase().as_str())
        {
            return Err(ConfigError::UnsupportedScheme {
                scheme: scheme.to_owned(),
            });
        }
        let options = PgConnectOptions::from_str(url).map_err(ConfigError::InvalidUrl)?;
        Ok(Self::from_options(options))
    }

    /// Settings for already built connect options, for settings a URL cannot carry, such as a
    /// client certificate given as PEM bytes.
    pub fn from_options(options: PgConnectOptions) -> Self {
        Self {
            connect: options,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            schema: None,
            migrate: true,
            limits: StoreLimits::default(),
            page_size: 1000,
            max_batch_events: 2000,
            committers: 2,
            poll_interval: Duration::from_secs(5),
        }
    }

    /// Sets the maximum number of pooled connections for appends and reads. Default: 10.
    ///
    /// Each committer (see [`PostgresConfig::committers`]) uses one connection while it writes a
    /// batch, and each page of a read uses one while its query runs. Waiting callers queue in
    /// order. A store that has live subscriptions opens one more connection for `LISTEN`,
    /// outside this pool. Values below 1 count as 1.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Sets how long an operation waits for a pooled connection, including the time to open one,
    /// before it fails with [`StoreError::Unavailable`](aether_core::StoreError::Unavailable).
    /// Default: 5 seconds.
    ///
    /// NOTE: queries have no time limit of their own, so a server that stops responding without
    /// closing the connection blocks them until the operating system gives up on it. To bound
    /// them, set PostgreSQL's `statement_timeout` in the URL, for example
    /// `?options=-c%20statement_timeout%3D30s`; a timed-out query fails with `Unavailable`.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Puts the store's tables in this schema, which the store creates if it is missing.
    /// Default: none, so the tables go to the first schema of the server's `search_path`
    /// (normally `public`).
    ///
    /// The name must be 1 to [`MAX_SCHEMA_LEN`] bytes of lowercase ASCII letters, digits and `_`,
    /// starting with a letter or `_`. Every connection of the store sets its `search_path` to
    /// the schema. Stores on different schemas of one database do not block each other.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Sets whether [`PostgresStore::connect`](crate::PostgresStore::connect) creates and upgrades the
    /// tables with the embedded migrations. Default: `true`. Turn it off when the schema is
    /// managed elsewhere and the database user may not create tables.
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Sets the size limits checked before anything is written. Default: [`StoreLimits::default`].
    pub fn limits(mut self, limits: StoreLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the number of events fetched by one query of `read`, `read_all` and `subscribe`.
    /// Default: 1000. Values below 1 count as 1.
    ///
    /// Within one `read` or `read_all`, each full page doubles the next, up to four times this
    /// size, so long replays need fewer queries. A read keeps at most three pages in memory.
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// Sets the maximum number of events a committer writes in one transaction (group commit). An append
    /// with more events than this is written alone in its own transaction. Default: 2000.
    /// Values below 1 count as 1.
    pub fn max_batch_events(mut self, max: usize) -> Self {
        self.max_batch_events = max.max(1);
        self
    }

    /// Sets the number of committer tasks that write queued appends. Default: 2.
    ///
    /// Appends queue in memory and each committer takes as many as fit in one batch. With two
    /// committers one batch is prepared while the other commits. Values below 1 count as 1.
    pub fn committers(mut self, committers: usize) -> Self {
        self.committers = committers.max(1);
        self
    }

    /// Sets how often a store with live subscriptions checks for new events without a notification,
    /// which covers notifications lost while the `LISTEN` connection was down. Default: 5
    /// seconds.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the TLS mode, overriding the URL's `sslmode`. Default: the URL's, or
    /// [`PgSslMode::Prefer`] when it has none.
    pub fn ssl_mode(mut self, mode: PgSslMode) -> Self {
        self.connect = self.connect.ssl_mode(mode);
        self
    }

    /// Sets the PEM file of the certificate authorities that verify the server's certificate, overriding
    /// the URL's `sslrootcert`. Default: the URL's, or the built-in web roots when it has none.
    pub fn ssl_root_cert(mut self, path: impl AsRef<Path>) -> Self {
        self.connect = self.connect.ssl_root_cert(path);
        self
    }

    /// Returns the configured maximum number of pooled connections.
    pub fn get_max_connections(&self) -> u32 {
        self.max_connections
    }

    /// Returns the configured schema, if any.
    pub fn get_schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Returns the connect options, with the TLS settings applied.
    pub fn get_connect_options(&self) -> &PgConnectOptions {
        &self.connect
    }

    /// Checks the schema name against the rules of [`PostgresConfig::schema`].
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(schema) = &self.schema {
            validate_schema(schema)?;
        }
        Ok(())
    }
}

/// A rejected setting of [`PostgresConfig`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The connection URL could not be parsed.
    #[error("invalid PostgreSQL connection URL")]
    InvalidUrl(#[source] sqlx::Error),

    /// The URL names another database system. Only the scheme is kept, because the rest of
    /// the URL may contain a password.
    #[error("unsupported URL scheme {scheme:?}: expected postgres:// or postgresql://")]
    UnsupportedScheme {
        /// The rejected scheme.
        scheme: String,
    },

    /// The schema name breaks the rules of [`PostgresConfig::schema`].
    #[error("invalid schema name {name:?}: {reason}")]
    InvalidSchema {
        /// The rejected name.
        name: String,
        /// The rule the name breaks.
        reason: &'static str,
    },
}

fn validate_schema(name: &str) -> Result<(), ConfigError> {
    let reject = |reason| {
        Err(ConfigError::InvalidSchema {
            name: name.to_owned(),
            reason,
        })
    };
    let Some(first) = name.chars().next() else {
        return reject("it is empty");
    };
    if name.len() > MAX_SCHEMA_LEN {
        return reject("it is longer than 48 bytes");
    }
    if !(first.is_ascii_lowercase() || first == '_') {
        return reject("it must start with a lowercase letter or '_'");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return reject("only a-z, 0-9 and '_' are allowed");
    }
    if name.starts_with("pg_") {
        return reject("names starting with pg_ are reserved by PostgreSQL");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(validate_schema("orders").is_ok());
        assert!(validate_schema("_t1").is_ok());
        assert!(validate_schema(&"s".repeat(MAX_SCHEMA_LEN)).is_ok());
        for bad in ["", "1a", "Orders", "a-b", "a.b", "a\"b", "pg_x"] {
            assert!(validate_schema(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(validate_schema(&"s".repeat(MAX_SCHEMA_LEN + 1)).is_err());
    }

    #[test]
    fn url_of_other_system_is_rejected() {
        for url in ["mysql://u:secret@127.0.0.1/db", "http://127.0.0.1:5432/db"] {
            let err = PostgresConfig::from_url(url).unwrap_err();
            assert!(
                matches!(err, ConfigError::UnsupportedScheme { .. }),
                "{url}: {err}"
            );
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        for url in ["postgres://u@127.0.0.1/db", "PostgreSQL://u@127.0.0.1/db"] {
            assert!(PostgresConfig::from_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn url_with_tls_settings() {
        let config =
            PostgresConfig::from_url("postgres://u@127.0.0.1:5999/db?sslmode=verify-full").unwrap();
        assert!(matches!(
            config.get_connect_options().get_ssl_mode(),
            PgSslMode::VerifyFull
        ));
        let config = config.ssl_mode(PgSslMode::Disable);
        assert!(matches!(
            config.get_connect_options().get_ssl_mode(),
            PgSslMode::Disable
        ));
    }

    #[test]
    fn bad_url_is_rejected() {
        let err = PostgresConfig::from_url("postgres://u@127.0.0.1:notaport/db").unwrap_err();
        assert!(matches!(err, ConfigError::InvalidUrl(_)));
    }

    #[test]
    fn setters_clamp_zero() {
        let config = PostgresConfig::from_url("postgres://127.0.0.1/db")
            .unwrap()
            .max_connections(0)
            .page_size(0)
            .committers(0)
            .max_batch_events(0);
        assert_eq!(config.max_connections, 1);
        assert_eq!(config.page_size, 1);
        assert_eq!(config.committers, 1);
        assert_eq!(config.max_batch_events, 1);
    }
}
