//! Streaming reader of the Online Retail CSV, plain or gzip-compressed.
//!
//! The reader checks the header, then parses one record at a time, so memory does not grow with
//! the file. A malformed line is yielded as an error value and reading goes on with the next
//! line. A failure to read the input itself (an I/O error, a corrupt gzip stream, a wrong header)
//! is a [`ReadError`] that ends the iteration.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use csv::ByteRecord;
use flate2::read::MultiGzDecoder;
use thiserror::Error;

use super::line::{Column, InvoiceLine, MalformedLine};

/// The outcome of one data line: a parsed line or the reason it is malformed.
pub type LineResult = Result<InvoiceLine, MalformedLine>;

/// Iterator over the data lines of the Online Retail CSV.
///
/// Each item is `Ok(Ok(line))` for a parsed line, `Ok(Err(malformed))` for a malformed line, or
/// `Err(error)` when the input cannot be read, after which the iterator returns `None`. Blank
/// lines are skipped, as the `csv` crate does, and are not counted.
///
/// `Description` is the only column in which bytes that are not UTF-8 are accepted: they are
/// replaced with U+FFFD and counted by [`LineReader::lossy_descriptions`]. In any other column
/// they make the line malformed, because those columns are keys or numbers. The shipped file is
/// valid UTF-8 throughout, and its 32 lines with non-ASCII characters (such as `£`) parse as
/// they are.
pub struct LineReader<R> {
    csv: csv::Reader<R>,
    record: ByteRecord,
    header_checked: bool,
    finished: bool,
    lines_read: u64,
    lossy_descriptions: u64,
}

/// A failure to read the input, as opposed to a malformed line.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened.
    #[error("failed to open {}", path.display())]
    Open {
        /// The path that was opened.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: io::Error,
    },
    /// Reading failed after `line`, for example because the gzip stream is corrupt.
    #[error("failed to read the CSV after line {line}")]
    Read {
        /// The last line number read, or 0 when not even the header was read.
        line: u64,
        /// The error from the CSV reader, which carries the I/O error.
        #[source]
        source: csv::Error,
    },
    /// The first line is not the expected header.
    #[error("unexpected CSV header {found:?}, expected {expected:?}")]
    Header {
        /// The header found, with bytes that are not UTF-8 replaced by U+FFFD.
        found: String,
        /// The expected header.
        expected: String,
    },
}

impl LineReader<MultiGzDecoder<File>> {
    /// Opens a gzip-compressed CSV file, such as `examples/data/online-retail.csv.gz`.
    ///
    /// Concatenated gzip members are read as one stream.
    ///
    /// # Errors
    ///
    /// Returns [`ReadError::Open`] when the file cannot be opened. A file that is not gzip fails
    /// on the first read, as [`ReadError::Read`].
    pub fn open_gz(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| ReadError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(LineReader::new(MultiGzDecoder::new(file)))
    }
}

impl<R: Read> LineReader<R> {
    /// Creates a reader of uncompressed CSV text, header included.
    pub fn new(reader: R) -> Self {
        let csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(reader);
        LineReader {
            csv,
            record: ByteRecord::new(),
            header_checked: false,
            finished: false,
            lines_read: 0,
            lossy_descriptions: 0,
        }
    }

    /// Returns the number of data lines yielded so far, malformed ones included.
    pub fn lines_read(&self) -> u64 {
        self.lines_read
    }

    /// Returns the number of parsed lines whose `Description` contained bytes that are not UTF-8.
    pub fn lossy_descriptions(&self) -> u64 {
        self.lossy_descriptions
    }

    fn check_header(&mut self) -> Result<(), ReadError> {
        let expected: Vec<&str> = Column::ALL.iter().map(|c| c.header_name()).collect();
        let header = self
            .csv
            .byte_headers()
            .map_err(|source| ReadError::Read { line: 0, source })?;
        if header
            .iter()
            .eq(expected.iter().map(|name| name.as_bytes()))
        {
            return Ok(());
        }
        let found: Vec<String> = header
            .iter()
            .map(|field| String::from_utf8_lossy(field).into_owned())
            .collect();
        Err(ReadError::Header {
            found: found.join(","),
            expected: expected.join(","),
        })
    }

    fn read_next(&mut self) -> Result<Option<LineResult>, ReadError> {
        if !self.header_checked {
            self.check_header()?;
            self.header_checked = true;
        }

        // The header is line 1 and each record is one line, whatever newlines it contains.
        let last_line = self.lines_read + 1;
        let more = self
            .csv
            .read_byte_record(&mut self.record)
            .map_err(|source| ReadError::Read {
                line: last_line,
                source,
            })?;
        if !more {
            return Ok(None);
        }
        self.lines_read += 1;
        let line = self.lines_read + 1;

        let parsed = InvoiceLine::from_record(line, &self.record);
        if parsed.is_ok() {
            let description = &self.record[Column::Description as usize];
            if std::str::from_utf8(description).is_err() {
                self.lossy_descriptions += 1;
            }
        }
        Ok(Some(parsed))
    }
}

impl<R: Read> Iterator for LineReader<R> {
    type Item = Result<LineResult, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let item = self.read_next().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.finished = true;
        }
        item
    }
}

/// Counts the data lines of a gzip-compressed CSV by counting newlines, without parsing.
///
/// The count is for sizing a progress bar. It equals the number of records that [`LineReader`]
/// yields unless a quoted field spans lines or the file has blank lines. The header is not
/// counted, and a last line without a newline is.
///
/// # Errors
///
/// Returns [`ReadError::Open`] when the file cannot be opened, and an I/O error from
/// decompression as [`ReadError::Read`] with line 0.
pub fn count_data_lines_gz(path: impl AsRef<Path>) -> Result<u64, ReadError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| ReadError::Open {
        path: path.to_owned(),
        source,
    })?;
    count_data_lines(MultiGzDecoder::new(file)).map_err(|error| ReadError::Read {
        line: 0,
        source: error.into(),
    })
}

/// Counts the data lines of uncompressed CSV text, as [`count_data_lines_gz`] does.
///
/// # Errors
///
/// Returns any error from reading `reader`.
pub fn count_data_lines(mut reader: impl Read) -> io::Result<u64> {
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut newlines = 0_u64;
    let mut last_byte = b'\n';
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        let chunk = &buffer[..read];
        newlines += chunk.iter().filter(|&&byte| byte == b'\n').count() as u64;
        last_byte = chunk[read - 1];
    }

    // A last line without a trailing newline still counts, and the header line does not.
    let lines = newlines + u64::from(last_byte != b'\n');
    Ok(lines.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;
    use crate::retail::line::{FieldError, InvoiceKind, MalformedKind};
    use crate::retail::money::{Money, MoneyError};

    const HEADER: &str =
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

    fn read_all(text: &[u8]) -> Vec<LineResult> {
        LineReader::new(text)
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    fn csv_text(body: &str) -> Vec<u8> {
        format!("{HEADER}{body}").into_bytes()
    }

    #[test]
    fn reads_quoted_comma_and_empty_description() {
        let text = csv_text(concat!(
            "536365,85123A,\"SET 2 TEA TOWELS, RED\",6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n",
            "536414,22139,,56,2010-12-01 11:52:00,0.0,,United Kingdom\n",
        ));
        let lines = read_all(&text);
        assert_eq!(lines.len(), 2);

        let quoted = lines[0].as_ref().unwrap();
        assert_eq!(quoted.line, 2);
        assert_eq!(quoted.description, "SET 2 TEA TOWELS, RED");
        assert_eq!(quoted.customer_id, Some(17850));

        let empty = lines[1].as_ref().unwrap();
        assert_eq!(empty.line, 3);
        assert_eq!(empty.description, "");
        assert_eq!(empty.customer_id, None);
        assert_eq!(empty.unit_price, Money::ZERO);
        assert_eq!(empty.amount, Money::ZERO);
    }

    #[test]
    fn reads_negative_quantity_and_price() {
        let text = csv_text(concat!(
            "C536379,D,Discount,-1,2010-12-01 09:41:00,27.50,14527.0,United Kingdom\n",
            "A563186,B,Adjust bad debt,1,2011-08-12 14:51:00,-11062.06,,United Kingdom\n",
        ));
        let lines = read_all(&text);

        let cancellation = lines[0].as_ref().unwrap();
        assert_eq!(cancellation.kind(), InvoiceKind::Cancellation);
        assert_eq!(cancellation.quantity, -1);
        assert_eq!(cancellation.amount, Money::from_thousandths(-27_500));

        let adjustment = lines[1].as_ref().unwrap();
        assert_eq!(adjustment.kind(), InvoiceKind::Adjustment);
        assert_eq!(adjustment.unit_price, Money::from_thousandths(-11_062_060));
        assert_eq!(adjustment.customer_id, None);
    }

    #[test]
    fn malformed_lines_do_not_stop_reading() {
        let text = csv_text(concat!(
            "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom\n",
            "536365,71053,SHORT ROW,6\n",
            "536365,71053,TOO PRECISE,6,2010-12-01 08:26:00,3.3901,17850.0,United Kingdom\n",
            "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,17850.0,United Kingdom\n",
        ));
        let mut reader = LineReader::new(text.as_slice());
        let lines: Vec<LineResult> = reader.by_ref().map(Result::unwrap).collect();
        assert_eq!(reader.lines_read(), 4);
        assert_eq!(lines.len(), 4);
        assert!(lines[0].is_ok());

        let short = lines[1].as_ref().unwrap_err();
        assert_eq!(short.line, 3);
        assert_eq!(short.kind, MalformedKind::ColumnCount { found: 4 });

        let precise = lines[2].as_ref().unwrap_err();
        assert_eq!(precise.line, 4);
        assert_eq!(
            precise.kind,
            MalformedKind::Invalid {
                column: Column::UnitPrice,
                value: "3.3901".to_owned(),
                reason: FieldError::Price(MoneyError::TooManyDecimals { decimals: 4 }),
            }
        );

        assert_eq!(lines[3].as_ref().unwrap().line, 5);
    }

    #[test]
    fn blank_lines_are_skipped() {
        let text = csv_text(concat!(
            "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom\n",
            "\n",
            "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,17850.0,United Kingdom\n",
        ));
        let mut reader = LineReader::new(text.as_slice());
        let lines: Vec<LineResult> = reader.by_ref().map(Result::unwrap).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(reader.lines_read(), 2);
        assert_eq!(lines[1].as_ref().unwrap().line, 3);
    }

    #[test]
    fn multiline_field_is_one_line() {
        let text = csv_text(concat!(
            "536365,71053,\"WHITE METAL\nLANTERN\",6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom\n",
            "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,17850.0,United Kingdom\n",
        ));
        let lines = read_all(&text);
        assert_eq!(
            lines[0].as_ref().unwrap().description,
            "WHITE METAL\nLANTERN"
        );
        assert_eq!(lines[1].as_ref().unwrap().line, 3);
        assert_eq!(count_data_lines(&text[..]).unwrap(), 3);
    }

    #[test]
    fn counts_lossy_descriptions() {
        let mut text = csv_text("");
        text.extend_from_slice(
            b"539492,gift_0001_40,Gift Voucher \xA340.00,1,2010-12-20 10:14:00,34.04,,United Kingdom\n",
        );
        text.extend_from_slice(b"539493,22633,HAND WARMER,1,2010-12-20 10:15:00,1.85,,Espa\xF1a\n");
        let mut reader = LineReader::new(text.as_slice());
        let lines: Vec<LineResult> = reader.by_ref().map(Result::unwrap).collect();

        assert_eq!(
            lines[0].as_ref().unwrap().description,
            "Gift Voucher \u{FFFD}40.00"
        );
        assert!(matches!(
            lines[1].as_ref().unwrap_err().kind,
            MalformedKind::NotUtf8 {
                column: Column::Country,
                ..
            }
        ));
        assert_eq!(reader.lossy_descriptions(), 1);
    }

    #[test]
    fn wrong_header_ends_reading() {
        let text = b"Invoice,Stock\n536365,85123A\n";
        let mut reader = LineReader::new(&text[..]);
        let error = reader.next().unwrap().unwrap_err();
        assert!(matches!(error, ReadError::Header { .. }), "{error}");
        assert!(reader.next().is_none());
        assert_eq!(reader.lines_read(), 0);
    }

    #[test]
    fn empty_input_is_wrong_header() {
        let mut reader = LineReader::new(&b""[..]);
        assert!(matches!(reader.next(), Some(Err(ReadError::Header { .. }))));
    }

    #[test]
    fn header_only_has_no_lines() {
        assert!(read_all(HEADER.as_bytes()).is_empty());
    }

    #[test]
    fn opens_gzip_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("lines.csv.gz");
        let text = csv_text(concat!(
            "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n",
            "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",
        ));
        let mut encoder = GzEncoder::new(File::create(&path).unwrap(), Compression::fast());
        encoder.write_all(&text).unwrap();
        encoder.finish().unwrap();

        let lines: Vec<LineResult> = LineReader::open_gz(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].as_ref().unwrap().stock_code, "71053");
        assert_eq!(count_data_lines_gz(&path).unwrap(), 2);
    }

    #[test]
    fn corrupt_gzip_is_read_error() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("plain.csv.gz");
        std::fs::write(&path, csv_text("")).unwrap();

        let mut reader = LineReader::open_gz(&path).unwrap();
        let error = reader.next().unwrap().unwrap_err();
        assert!(matches!(error, ReadError::Read { line: 0, .. }), "{error}");
        assert!(reader.next().is_none());
        assert!(count_data_lines_gz(&path).is_err());
    }

    #[test]
    fn missing_file_is_open_error() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("missing.csv.gz");
        assert!(matches!(
            LineReader::open_gz(&path),
            Err(ReadError::Open { .. })
        ));
    }

    #[test]
    fn count_lines_with_and_without_final_newline() {
        assert_eq!(count_data_lines(&b""[..]).unwrap(), 0);
        assert_eq!(count_data_lines(HEADER.as_bytes()).unwrap(), 0);
        assert_eq!(count_data_lines(&csv_text("a\nb\n")[..]).unwrap(), 2);
        assert_eq!(count_data_lines(&csv_text("a\nb")[..]).unwrap(), 2);
    }
}
