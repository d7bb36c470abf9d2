//! Mapping of sqlx errors onto the [`StoreError`] kinds that callers branch on.

use aether_core::{ErrorKind, StoreError};

/// Name of this backend in [`StoreError::Backend`].
pub(crate) const BACKEND: &str = "postgres";

/// SQLSTATE of a deadlock that PostgreSQL broke by aborting this transaction.
pub(crate) const DEADLOCK_DETECTED: &str = "40P01";
/// SQLSTATE of a serialization failure.
pub(crate) const SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE of a unique constraint violation.
pub(crate) const UNIQUE_VIOLATION: &str = "23505";

/// Maps a sqlx error to a [`StoreError`] for an operation described by `operation`, such as
/// `appending to invoice/1`.
///
/// Lost or refused connections, pool timeouts and server shutdowns become
/// [`StoreError::Unavailable`]; undecodable rows become [`StoreError::Corrupt`]; everything else,
/// rejected TLS certificates and handshakes included, becomes [`StoreError::Backend`] with the
/// sqlx error as its source.
pub(crate) fn map_sqlx(operation: impl Into<String>, err: sqlx::Error) -> StoreError {
    let operation = operation.into();
    match classify(&err) {
        ErrorKind::Unavailable => StoreError::unavailable(operation, err),
        ErrorKind::Corrupt => StoreError::Corrupt {
            location: format!("a row read while {operation}"),
            reason: "a column could not be decoded".to_owned(),
            source: Some(Box::new(err)),
        },
        _ => StoreError::backend(BACKEND, operation, err),
    }
}

/// Returns the [`ErrorKind`] that [`map_sqlx`] gives `err`: `Unavailable`, `Corrupt` or `Backend`.
pub(crate) fn classify(err: &sqlx::Error) -> ErrorKind {
    if is_unavailable(err) {
        return ErrorKind::Unavailable;
    }
    match err {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => ErrorKind::Corrupt,
        _ => ErrorKind::Backend,
    }
}

/// Returns whether `err` means the server could not be reached or went away, so that retrying
/// later may succeed.
///
/// TLS failures are not: a certificate that does not verify, a handshake that the server
/// rejects or TLS settings that cannot be loaded fail the same way on every retry. sqlx reports
/// the settings as [`sqlx::Error::Tls`], and its rustls client reports certificate, alert and
/// other TLS protocol failures as I/O errors of kind `InvalidData`, a kind that reading from or
/// writing to a socket does not produce.
///
/// NOTE: a missing `sslrootcert`, `sslcert` or `sslkey` file still counts as unavailable,
/// because sqlx reports it as an I/O `NotFound` error, the same as a missing unix socket.
pub(crate) fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(io) => io.kind() != std::io::ErrorKind::InvalidData,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        // sqlx reports a connection cut in the middle of a message as a protocol error.
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_unavailable_code(&code)),
        _ => false,
    }
}

/// SQLSTATEs that mean the server cannot serve the session right now: class 08 (connection
/// exception), 53300 (too many connections), 57P01-57P03 (shutdown, crash, starting up) and
/// 57014 (statement cancelled, as during a fast shutdown).
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "53300" | "57P01" | "57P02" | "57P03" | "57014")
}

/// Returns the SQLSTATE of a database error.
pub(crate) fn sqlstate(err: &sqlx::Error) -> Option<String> {
    err.as_database_error()
        .and_then(|db| db.code())
        .map(|code| code.into_owned())
}

/// Returns whether PostgreSQL rolled the transaction back because of a deadlock or a
/// serialization failure, so that running it again may succeed.
pub(crate) fn is_transient(err: &sqlx::Error) -> bool {
    matches!(
        sqlstate(err).as_deref(),
        Some(DEADLOCK_DETECTED | SERIALIZATION_FAILURE)
    )
}

/// Builds a [`StoreError::Corrupt`] for a stored value that breaks the store's invariants.
pub(crate) fn corrupt(location: impl Into<String>, reason: impl Into<String>) -> StoreError {
    StoreError::corrupt(location, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_pool_timeouts_are_unavailable() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            map_sqlx("reading", sqlx::Error::Io(refused)).kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            map_sqlx("reading", sqlx::Error::PoolTimedOut).kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn tls_failures_are_backend() {
        // The form in which sqlx's rustls client reports a certificate that does not verify.
        let rejected = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        assert_eq!(
            map_sqlx("connecting", sqlx::Error::Io(rejected)).kind(),
            ErrorKind::Backend
        );
        let settings = sqlx::Error::Tls("server does not support TLS".into());
        assert_eq!(map_sqlx("connecting", settings).kind(), ErrorKind::Backend);
        // A connection that the server closed stays retryable, with or without TLS.
        let closed = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed");
        assert_eq!(
            map_sqlx("connecting", sqlx::Error::Io(closed)).kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn decode_failures_are_corrupt() {
        let err = sqlx::Error::ColumnDecode {
            index: "\"payload\"".to_owned(),
            source: "bad".into(),
        };
        assert_eq!(map_sqlx("reading", err).kind(), ErrorKind::Corrupt);
    }

    #[test]
    fn other_errors_are_backend_with_source() {
        let err = map_sqlx("reading", sqlx::Error::RowNotFound);
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(err.to_string(), "postgres store failed while reading");
    }

    #[test]
    fn shutdown_codes_are_unavailable() {
        for code in ["08006", "08001", "57P01", "57P03", "53300", "57014"] {
            assert!(is_unavailable_code(code), "{code}");
        }
        assert!(!is_unavailable_code("23505"));
    }
}
