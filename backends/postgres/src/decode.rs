//! Conversions of stored values, which turn anything that breaks the store's invariants into
//! [`StoreError::Corrupt`] instead of a panic.

use aether_core::{Position, StoreError, Version};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::error::corrupt;

/// Decodes column `index`, turning a failure into [`StoreError::Corrupt`] at `location`.
pub(crate) fn get<'r, T>(
    row: &'r PgRow,
    index: usize,
    location: &dyn Fn() -> String,
) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(index).map_err(|err| StoreError::Corrupt {
        location: location(),
        reason: format!("column {index} could not be decoded"),
        source: Some(Box::new(err)),
    })
}

/// Converts a version read from `table`, rejecting negative values.
pub(crate) fn stored_version(value: i64, table: &str) -> Result<Version, StoreError> {
    u64::try_from(value)
        .map(Version::new)
        .map_err(|_| corrupt(table, format!("negative version {value}")))
}

/// Converts a position read from the events table, rejecting values below 1.
pub(crate) fn stored_position(value: i64) -> Result<Position, StoreError> {
    match u64::try_from(value) {
        Ok(raw) if raw > 0 => Ok(Position::new(raw)),
        _ => Err(corrupt(
            "aether_events",
            format!("invalid position {value}"),
        )),
    }
}

/// Converts a stored schema version, which the tables keep within `u32`.
pub(crate) fn schema_version(value: i64, location: &dyn Fn() -> String) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| {
        corrupt(
            location(),
            format!("schema version {value} is out of range"),
        )
    })
}

#[cfg(test)]
mod tests {
    use aether_core::ErrorKind;

    use super::*;

    #[test]
    fn out_of_range_values_are_corrupt() {
        assert_eq!(stored_version(3, "t").unwrap(), Version::new(3));
        assert_eq!(
            stored_version(-1, "t").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        assert_eq!(stored_position(7).unwrap(), Position::new(7));
        assert_eq!(stored_position(0).unwrap_err().kind(), ErrorKind::Corrupt);
        let location = || "here".to_owned();
        assert_eq!(schema_version(2, &location).unwrap(), 2);
        let err = schema_version(i64::from(u32::MAX) + 1, &location).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
    }
}
