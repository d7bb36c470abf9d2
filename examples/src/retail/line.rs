//! One invoice line of the Online Retail CSV, parsed and checked column by column.
//!
//! Line numbers count CSV records, with the header as line 1, so the first data line is line 2.
//! They equal the file's physical line numbers when every record is one line and no line is
//! blank, as in the shipped data set. A quoted field spanning lines, or a skipped blank line,
//! makes later physical line numbers run ahead of these.

use std::fmt;
use std::num::ParseIntError;

use chrono::NaiveDateTime;
use csv::ByteRecord;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::money::{Money, MoneyError};

/// The `InvoiceDate` format, such as `2010-12-01 08:26:00`.
pub const DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// One parsed invoice line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    /// The line number, counting the header as line 1.
    pub line: u64,
    /// `InvoiceNo`, never empty. Its first character gives the [`InvoiceKind`].
    pub invoice_no: String,
    /// `StockCode`, never empty.
    pub stock_code: String,
    /// `Description`, possibly empty. Bytes that are not UTF-8 are replaced with U+FFFD.
    pub description: String,
    /// `Quantity`, negative on cancellations and on some stock corrections.
    pub quantity: i64,
    /// `InvoiceDate`, with no time zone (the data set records UK local time).
    pub invoice_date: NaiveDateTime,
    /// `UnitPrice`.
    pub unit_price: Money,
    /// `CustomerID` without its `.0` suffix, or `None` when the column is empty.
    pub customer_id: Option<u32>,
    /// `Country`.
    pub country: String,
    /// `quantity × unit_price`, computed when the line is parsed.
    pub amount: Money,
}

/// The kind of an invoice, given by the first character of its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InvoiceKind {
    /// A number that starts with neither `C` nor `A`.
    Sale,
    /// A number that starts with `C`.
    Cancellation,
    /// A number that starts with `A`, such as the bad-debt adjustments `A563185`.
    Adjustment,
}

/// A CSV column, displayed with its header name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    /// `InvoiceNo`.
    InvoiceNo,
    /// `StockCode`.
    StockCode,
    /// `Description`.
    Description,
    /// `Quantity`.
    Quantity,
    /// `InvoiceDate`.
    InvoiceDate,
    /// `UnitPrice`.
    UnitPrice,
    /// `CustomerID`.
    CustomerId,
    /// `Country`.
    Country,
}

/// A data line that could not be parsed. The reader goes on with the next line.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("malformed line {line}: {kind}")]
pub struct MalformedLine {
    /// The line number, counting the header as line 1.
    pub line: u64,
    /// The reason the line is malformed.
    pub kind: MalformedKind,
}

/// The reason a line is malformed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MalformedKind {
    /// The record does not have exactly eight columns.
    #[error("expected {} columns, found {found}", Column::ALL.len())]
    ColumnCount {
        /// The number of columns in the record.
        found: usize,
    },
    /// A column that must have a value is empty.
    #[error("empty {column}")]
    Empty {
        /// The empty column.
        column: Column,
    },
    /// A column other than `Description` contains bytes that are not UTF-8.
    #[error("{column} value {value:?} is not valid UTF-8")]
    NotUtf8 {
        /// The column.
        column: Column,
        /// The value with invalid bytes replaced by U+FFFD.
        value: String,
    },
    /// A column's value cannot be parsed.
    #[error("invalid {column} value {value:?}: {reason}")]
    Invalid {
        /// The column.
        column: Column,
        /// The value as it appears in the CSV.
        value: String,
        /// The parse error.
        reason: FieldError,
    },
    /// `Quantity × UnitPrice` does not fit in an `i64` count of thousandths of a pound.
    #[error("Quantity {quantity} × UnitPrice {unit_price} overflows an i64 amount")]
    AmountOverflow {
        /// The line's quantity.
        quantity: i64,
        /// The line's unit price.
        unit_price: Money,
    },
}

/// Parse error of a single column value.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FieldError {
    /// `Quantity` is not a decimal `i64`.
    #[error(transparent)]
    Quantity(#[from] ParseIntError),
    /// `InvoiceDate` does not match [`DATE_FORMAT`].
    #[error("{0}, expected the form 2010-12-01 08:26:00")]
    Date(#[from] chrono::ParseError),
    /// `UnitPrice` is not an exact amount in thousandths of a pound.
    #[error(transparent)]
    Price(#[from] MoneyError),
    /// `CustomerID` is not a `u32` with an optional `.0` suffix.
    #[error("expected a customer number up to 4294967295 with an optional `.0` suffix")]
    CustomerId,
}

impl InvoiceLine {
    /// Parses one data record of the CSV, read as bytes, found at `line`.
    ///
    /// # Errors
    ///
    /// Returns a [`MalformedLine`] for the first problem found, with columns checked left to
    /// right. The problems are a wrong column count, an empty `InvoiceNo` or `StockCode`, bytes
    /// that are not UTF-8 outside `Description`, an unparsable `Quantity`, `InvoiceDate`,
    /// `UnitPrice` or `CustomerID`, and a line amount that overflows.
    pub fn from_record(line: u64, record: &ByteRecord) -> Result<Self, MalformedLine> {
        let malformed = |kind| MalformedLine { line, kind };
        if record.len() != Column::ALL.len() {
            return Err(malformed(MalformedKind::ColumnCount {
                found: record.len(),
            }));
        }
        let field = |column: Column| &record[column as usize];

        let invoice_no = required_text(field(Column::InvoiceNo), Column::InvoiceNo)
            .map_err(malformed)?
            .to_owned();
        let stock_code = required_text(field(Column::StockCode), Column::StockCode)
            .map_err(malformed)?
            .to_owned();
        let description = String::from_utf8_lossy(field(Column::Description)).into_owned();

        let quantity_text = text(field(Column::Quantity), Column::Quantity).map_err(malformed)?;
        let quantity = quantity_text
            .parse::<i64>()
            .map_err(|error| malformed(invalid(Column::Quantity, quantity_text, error)))?;

        let date_text = text(field(Column::InvoiceDate), Column::InvoiceDate).map_err(malformed)?;
        let invoice_date = NaiveDateTime::parse_from_str(date_text, DATE_FORMAT)
            .map_err(|error| malformed(invalid(Column::InvoiceDate, date_text, error)))?;

        let price_text = text(field(Column::UnitPrice), Column::UnitPrice).map_err(malformed)?;
        let unit_price = price_text
            .parse::<Money>()
            .map_err(|error| malformed(invalid(Column::UnitPrice, price_text, error)))?;

        let customer_text =
            text(field(Column::CustomerId), Column::CustomerId).map_err(malformed)?;
        let customer_id = parse_customer_id(customer_text)
            .map_err(|error| malformed(invalid(Column::CustomerId, customer_text, error)))?;

        let country = text(field(Column::Country), Column::Country)
            .map_err(malformed)?
            .to_owned();

        let amount = unit_price.checked_mul(quantity).ok_or_else(|| {
            malformed(MalformedKind::AmountOverflow {
                quantity,
                unit_price,
            })
        })?;

        Ok(InvoiceLine {
            line,
            invoice_no,
            stock_code,
            description,
            quantity,
            invoice_date,
            unit_price,
            customer_id,
            country,
            amount,
        })
    }

    /// Returns the kind of the line's invoice.
    pub fn kind(&self) -> InvoiceKind {
        InvoiceKind::of(&self.invoice_no)
    }
}

impl InvoiceKind {
    /// Returns the kind of the invoice numbered `invoice_no`.
    pub fn of(invoice_no: &str) -> Self {
        match invoice_no.as_bytes().first() {
            Some(b'C') => InvoiceKind::Cancellation,
            Some(b'A') => InvoiceKind::Adjustment,
            _ => InvoiceKind::Sale,
        }
    }
}

impl Column {
    /// Every column in CSV order, so a column's position in this array is its index in a record.
    pub const ALL: [Column; 8] = [
        Column::InvoiceNo,
        Column::StockCode,
        Column::Description,
        Column::Quantity,
        Column::InvoiceDate,
        Column::UnitPrice,
        Column::CustomerId,
        Column::Country,
    ];

    /// Returns the column's name in the CSV header.
    pub const fn header_name(self) -> &'static str {
        match self {
            Column::InvoiceNo => "InvoiceNo",
            Column::StockCode => "StockCode",
            Column::Description => "Description",
            Column::Quantity => "Quantity",
            Column::InvoiceDate => "InvoiceDate",
            Column::UnitPrice => "UnitPrice",
            Column::CustomerId => "CustomerID",
            Column::Country => "Country",
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.header_name())
    }
}

fn text(bytes: &[u8], column: Column) -> Result<&str, MalformedKind> {
    std::str::from_utf8(bytes).map_err(|_| MalformedKind::NotUtf8 {
        column,
        value: String::from_utf8_lossy(bytes).into_owned(),
    })
}

fn required_text(bytes: &[u8], column: Column) -> Result<&str, MalformedKind> {
    if bytes.is_empty() {
        return Err(MalformedKind::Empty { column });
    }
    text(bytes, column)
}

fn invalid(column: Column, value: &str, reason: impl Into<FieldError>) -> MalformedKind {
    MalformedKind::Invalid {
        column,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Parses `17850.0` or `17850` as 17850 and an empty value as no customer.
///
/// The data set stores customer numbers as floats, so any number of zeros may follow the point.
/// A non-zero fraction is rejected.
fn parse_customer_id(text: &str) -> Result<Option<u32>, FieldError> {
    if text.is_empty() {
        return Ok(None);
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits_only = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(whole) || !digits_only(fraction) || fraction.bytes().any(|b| b != b'0') {
        return Err(FieldError::CustomerId);
    }
    whole
        .parse::<u32>()
        .map(Some)
        .map_err(|_| FieldError::CustomerId)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: [&str; 8] = [
        "536365",
        "85123A",
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "6",
        "2010-12-01 08:26:00",
        "2.55",
        "17850.0",
        "United Kingdom",
    ];

    fn parse_with(column: Column, value: &[u8]) -> Result<InvoiceLine, MalformedLine> {
        let mut fields: Vec<&[u8]> = GOOD.iter().map(|field| field.as_bytes()).collect();
        fields[column as usize] = value;
        InvoiceLine::from_record(7, &ByteRecord::from(fields))
    }

    fn kind_with(column: Column, value: &str) -> MalformedKind {
        parse_with(column, value.as_bytes()).unwrap_err().kind
    }

    #[test]
    fn record_parses_every_column() {
        let line = InvoiceLine::from_record(2, &ByteRecord::from(GOOD.to_vec())).unwrap();
        assert_eq!(line.line, 2);
        assert_eq!(line.invoice_no, "536365");
        assert_eq!(line.stock_code, "85123A");
        assert_eq!(line.description, "WHITE HANGING HEART T-LIGHT HOLDER");
        assert_eq!(line.quantity, 6);
        assert_eq!(line.invoice_date.to_string(), "2010-12-01 08:26:00");
        assert_eq!(line.unit_price, Money::from_thousandths(2550));
        assert_eq!(line.customer_id, Some(17850));
        assert_eq!(line.country, "United Kingdom");
        assert_eq!(line.amount, Money::from_thousandths(15_300));
        assert_eq!(line.kind(), InvoiceKind::Sale);
    }

    #[test]
    fn invoice_kind_from_prefix() {
        assert_eq!(InvoiceKind::of("536365"), InvoiceKind::Sale);
        assert_eq!(InvoiceKind::of("C536379"), InvoiceKind::Cancellation);
        assert_eq!(InvoiceKind::of("A563185"), InvoiceKind::Adjustment);
        assert_eq!(InvoiceKind::of("c536379"), InvoiceKind::Sale);
    }

    #[test]
    fn customer_id_forms() {
        assert_eq!(parse_customer_id("17850.0"), Ok(Some(17850)));
        assert_eq!(parse_customer_id("17850"), Ok(Some(17850)));
        assert_eq!(parse_customer_id("17850.00"), Ok(Some(17850)));
        assert_eq!(parse_customer_id(""), Ok(None));
        for text in [
            "17850.5",
            "17850.",
            ".0",
            "-1.0",
            " 17850.0",
            "abc",
            "4294967296.0",
        ] {
            assert_eq!(
                parse_customer_id(text),
                Err(FieldError::CustomerId),
                "text {text:?}"
            );
        }
    }

    #[test]
    fn negative_quantity_gives_negative_amount() {
        let line = parse_with(Column::Quantity, b"-12").unwrap();
        assert_eq!(line.quantity, -12);
        assert_eq!(line.amount, Money::from_thousandths(-30_600));
    }

    #[test]
    fn short_row_is_malformed() {
        let record = ByteRecord::from(GOOD[..5].to_vec());
        let error = InvoiceLine::from_record(9, &record).unwrap_err();
        assert_eq!(error.line, 9);
        assert_eq!(error.kind, MalformedKind::ColumnCount { found: 5 });
        assert_eq!(
            error.to_string(),
            "malformed line 9: expected 8 columns, found 5"
        );
    }

    #[test]
    fn empty_keys_are_malformed() {
        assert_eq!(
            kind_with(Column::InvoiceNo, ""),
            MalformedKind::Empty {
                column: Column::InvoiceNo
            }
        );
        assert_eq!(
            kind_with(Column::StockCode, ""),
            MalformedKind::Empty {
                column: Column::StockCode
            }
        );
    }

    #[test]
    fn bad_numbers_name_column_and_value() {
        let error = parse_with(Column::UnitPrice, b"1.2345").unwrap_err();
        assert_eq!(
            error.kind,
            MalformedKind::Invalid {
                column: Column::UnitPrice,
                value: "1.2345".to_owned(),
                reason: FieldError::Price(MoneyError::TooManyDecimals { decimals: 4 }),
            }
        );
        let message = error.to_string();
        assert!(message.contains("line 7"), "{message}");
        assert!(message.contains("UnitPrice"), "{message}");
        assert!(message.contains("\"1.2345\""), "{message}");

        let quantity = parse_with(Column::Quantity, b"6.5")
            .unwrap_err()
            .to_string();
        assert!(quantity.contains("Quantity value \"6.5\""), "{quantity}");

        let date = parse_with(Column::InvoiceDate, b"01/12/2010 08:26").unwrap_err();
        assert!(matches!(
            date.kind,
            MalformedKind::Invalid {
                column: Column::InvoiceDate,
                reason: FieldError::Date(_),
                ..
            }
        ));

        let customer = kind_with(Column::CustomerId, "17850.5");
        assert!(matches!(
            customer,
            MalformedKind::Invalid {
                column: Column::CustomerId,
                reason: FieldError::CustomerId,
                ..
            }
        ));
    }

    #[test]
    fn amount_overflow_is_malformed() {
        let mut fields = GOOD.to_vec();
        fields[Column::Quantity as usize] = "9223372036854775807";
        let error = InvoiceLine::from_record(3, &ByteRecord::from(fields)).unwrap_err();
        assert_eq!(
            error.kind,
            MalformedKind::AmountOverflow {
                quantity: i64::MAX,
                unit_price: Money::from_thousandths(2550),
            }
        );
    }

    #[test]
    fn non_utf8_description_is_replaced() {
        // 0xA3 is the pound sign in Latin-1, and not valid UTF-8 on its own.
        let line = parse_with(Column::Description, b"VOUCHER \xA340.00").unwrap();
        assert_eq!(line.description, "VOUCHER \u{FFFD}40.00");
    }

    #[test]
    fn non_utf8_key_is_malformed() {
        let kind = parse_with(Column::Country, b"Espa\xF1a").unwrap_err().kind;
        assert_eq!(
            kind,
            MalformedKind::NotUtf8 {
                column: Column::Country,
                value: "Espa\u{FFFD}a".to_owned(),
            }
        );
    }

    #[test]
    fn line_serde_round_trip() {
        let line = InvoiceLine::from_record(2, &ByteRecord::from(GOOD.to_vec())).unwrap();
        let json = serde_json::to_string(&line).unwrap();
        assert!(json.contains("\"unit_price\":2550"), "{json}");
        assert_eq!(serde_json::from_str::<InvoiceLine>(&json).unwrap(), line);
    }
}
