//! Streaming reader of the Online Retail CSV, plain or gzip-compressed.
//!
//! [`InputFile`] distinguishes the two by the gzip magic bytes at the start of the file. The
//! reader checks the header, then parses one record at a time, so memory does not grow with the
//! file. A malformed line is yielded as an error value and reading goes on with the next line. A
//! failure to read the input itself (an I/O error, a truncated or corrupt gzip stream, a wrong
//! header) is a [`ReadError`] that ends the iteration.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use csv::ByteRecord;
use thiserror::Error;

use super::input::{InputFile, InputFormat};
use super::line::{Column, InvoiceLine, MalformedLine};

/// The name of an input given as a reader rather than a file, in errors.
const UNNAMED_INPUT: &str = "the CSV input";

/// The maximum number of characters of a wrong first line that [`ReadError::Header`] shows.
const MAX_SHOWN_HEADER_CHARS: usize = 120;

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
    input: String,
    format: Option<InputFormat>,
    header_checked: bool,
    finished: bool,
    lines_read: u64,
    lossy_descriptions: u64,
}

/// A failure to read the input, as opposed to a malformed line.
///
/// Line numbers count the header as line 1. `input` is the file's path, or `the CSV input` for
/// a reader made with [`LineReader::new`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened, or its first bytes could not be read.
    #[error("failed to open the input file {}", path.display())]
    Open {
        /// The path that was opened.
        path: PathBuf,
        /// The error from the operating system.
        #[source]
        source: io::Error,
    },
    /// The path names a directory.
    #[error("the input {} is a directory, not a file", path.display())]
    Directory {
        /// The path.
        path: PathBuf,
    },
    /// The file has 0 bytes.
    #[error("the input file {} is empty", path.display())]
    Empty {
        /// The path.
        path: PathBuf,
    },
    /// The gzip stream ends before its end marker, so the file was cut short, for example by an
    /// interrupted download or copy.
    #[error("the gzip stream of {input} ends early, after line {line}, so the file is truncated")]
    Truncated {
        /// The input.
        input: String,
        /// The last line read in full.
        line: u64,
        /// The error from the CSV reader, which carries the decompressor's error.
        #[source]
        source: csv::Error,
    },
    /// Reading failed after `line` for another reason, such as a corrupt gzip stream.
    #[error(
        "failed to {} {input}{}",
        if *format == Some(InputFormat::Gzip) { "decompress" } else { "read" },
        after_line(*line)
    )]
    Read {
        /// The input.
        input: String,
        /// The format the file was read in, or `None` for a reader made with [`LineReader::new`].
        format: Option<InputFormat>,
        /// The last line read in full, or 0 when not even the header was read.
        line: u64,
        /// The error from the CSV reader, which carries the I/O error.
        #[source]
        source: csv::Error,
    },
    /// The first line is not the expected header.
    #[error(
        "the first line of {input}{} is not the Online Retail header: found {}, expected {expected:?}",
        read_as(format),
        show_found(found)
    )]
    Header {
        /// The input.
        input: String,
        /// The format the file was read in, or `None` for a reader made with [`LineReader::new`].
        format: Option<InputFormat>,
        /// The first line, cut after 120 characters, or `None` when it is not text (it is not
        /// UTF-8 or has control characters).
        found: Option<String>,
        /// The expected header.
        expected: String,
    },
}

/// Describes how a file was read, for [`ReadError::Header`].
fn read_as(format: &Option<InputFormat>) -> &'static str {
    match format {
        Some(InputFormat::Gzip) => " (after gzip decompression)",
        Some(InputFormat::Plain) => {
            " (read as plain CSV, because the file does not begin with the gzip magic bytes 1f 8b)"
        }
        None => "",
    }
}

/// Returns ` after line N`, or nothing when not even the header was read.
fn after_line(line: u64) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" after line {line}")
    }
}

/// Shows the first line found, for [`ReadError::Header`].
fn show_found(found: &Option<String>) -> String {
    match found {
        Some(text) => format!("{text:?}"),
        None => "bytes that are not text".to_owned(),
    }
}

impl LineReader<InputFile> {
    /// Opens the Online Retail CSV at `path`, gzip-compressed (such as
    /// `examples/data/online-retail.csv.gz`) or plain.
    ///
    /// # Errors
    ///
    /// The errors of [`InputFile::open`]. A wrong header or a corrupt gzip stream fails on the
    /// first read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let file = InputFile::open(path)?;
        let mut reader = LineReader::new(file);
        reader.input = reader.csv.get_ref().path().display().to_string();
        reader.format = Some(reader.csv.get_ref().format());
        Ok(reader)
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
            input: UNNAMED_INPUT.to_owned(),
            format: None,
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

    /// Reads and checks the header line, unless that was done before. The iterator calls this
    /// before the first data line.
    ///
    /// # Errors
    ///
    /// [`ReadError::Header`] for a missing or wrong header, and [`ReadError::Truncated`] or
    /// [`ReadError::Read`] when the input cannot be read.
    pub fn check_header(&mut self) -> Result<(), ReadError> {
        if self.header_checked {
            return Ok(());
        }
        let expected: Vec<&str> = Column::ALL.iter().map(|c| c.header_name()).collect();
        let header = match self.csv.byte_headers() {
            Ok(header) => header,
            Err(source) => return Err(read_failure(&self.input, self.format, 0, source)),
        };
        if header
            .iter()
            .eq(expected.iter().map(|name| name.as_bytes()))
        {
            self.header_checked = true;
            return Ok(());
        }
        let found = header_text(header);
        Err(ReadError::Header {
            input: self.input.clone(),
            format: self.format,
            found,
            expected: expected.join(","),
        })
    }

    fn read_next(&mut self) -> Result<Option<LineResult>, ReadError> {
        self.check_header()?;

        // The header is line 1 and each record is one line, whatever newlines it contains.
        let last_line = self.lines_read + 1;
        let more = match self.csv.read_byte_record(&mut self.record) {
            Ok(more) => more,
            Err(source) => return Err(read_failure(&self.input, self.format, last_line, source)),
        };
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

/// Opens the file at `path` and checks its header without reading any data line, so that a
/// wrong file is reported before anything else happens. Returns how the file is stored.
///
/// # Errors
///
/// The errors of [`LineReader::open`] and [`LineReader::check_header`].
pub fn check_input(path: impl AsRef<Path>) -> Result<InputFormat, ReadError> {
    let mut reader = LineReader::open(path)?;
    reader.check_header()?;
    Ok(reader.csv.get_ref().format())
}

/// Returns the fields of a header joined by commas, cut after [`MAX_SHOWN_HEADER_CHARS`]
/// characters, or `None` when they are not UTF-8 text without control characters.
fn header_text(header: &ByteRecord) -> Option<String> {
    let fields: Vec<&str> = header
        .iter()
        .map(std::str::from_utf8)
        .collect::<Result<_, _>>()
        .ok()?;
    let text = fields.join(",");
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return None;
    }
    match text.char_indices().nth(MAX_SHOWN_HEADER_CHARS) {
        Some((cut, _)) => Some(format!("{}…", &text[..cut])),
        None => Some(text),
    }
}

/// Builds the error for a failed read after `line`: [`ReadError::Truncated`] when a gzip stream
/// ends early, [`ReadError::Read`] otherwise.
fn read_failure(
    input: &str,
    format: Option<InputFormat>,
    line: u64,
    source: csv::Error,
) -> ReadError {
    // flate2 reports a stream that ends before its end marker as an unexpected end of file.
    let ended_early = matches!(
        source.kind(),
        csv::ErrorKind::Io(error) if error.kind() == io::ErrorKind::UnexpectedEof
    );
    let input = input.to_owned();
    if ended_early && format == Some(InputFormat::Gzip) {
        ReadError::Truncated {
            input,
            line,
            source,
        }
    } else {
        ReadError::Read {
            input,
            format,
            line,
            source,
        }
    }
}

/// Counts the data lines of the Online Retail CSV at `path`, gzip-compressed or plain, by
/// counting newlines, without parsing.
///
/// The count is for sizing a progress bar. It equals the number of records that [`LineReader`]
/// yields unless a quoted field spans lines or the file has blank lines. The header is not
/// counted, and a last line without a newline is.
///
/// # Errors
///
/// The errors of [`InputFile::open`], and [`ReadError::Truncated`] or [`ReadError::Read`] when
/// reading fails.
pub fn count_data_lines_in_file(path: impl AsRef<Path>) -> Result<u64, ReadError> {
    let mut file = InputFile::open(path)?;
    let input = file.path().display().to_string();
    let format = file.format();
    let mut counter = LineCounter::default();
    counter
        .count(&mut file)
        .map_err(|error| read_failure(&input, Some(format), counter.newlines, error.into()))?;
    Ok(counter.data_lines())
}

/// Counts the data lines of uncompressed CSV text, as [`count_data_lines_in_file`] does.
///
/// # Errors
///
/// Returns any error from reading `reader`.
pub fn count_data_lines(mut reader: impl Read) -> io::Result<u64> {
    let mut counter = LineCounter::default();
    counter.count(&mut reader)?;
    Ok(counter.data_lines())
}

/// The newlines counted so far and the last byte seen.
struct LineCounter {
    newlines: u64,
    last_byte: u8,
}

impl Default for LineCounter {
    fn default() -> Self {
        // An empty input counts as ending with a newline, so it has no line.
        LineCounter {
            newlines: 0,
            last_byte: b'\n',
        }
    }
}

impl LineCounter {
    /// Reads `reader` to its end and counts its newlines.
    fn count(&mut self, reader: &mut impl Read) -> io::Result<()> {
        let mut buffer = vec![0_u8; 64 * 1024];
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            let chunk = &buffer[..read];
            self.newlines += chunk.iter().filter(|&&byte| byte == b'\n').count() as u64;
            self.last_byte = chunk[read - 1];
        }
    }

    /// Returns the lines counted, without the header.
    fn data_lines(&self) -> u64 {
        // A last line without a trailing newline still counts, and the header line does not.
        let lines = self.newlines + u64::from(self.last_byte != b'\n');
        lines.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
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

    const TWO_LINES: &str = concat!(
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n",
        "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",
    );

    fn write_gzip(path: &Path, bytes: &[u8]) {
        let mut encoder = GzEncoder::new(File::create(path).unwrap(), Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap();
    }

    /// Returns the gzip bytes of a CSV with `lines` data lines that differ from one another, so
    /// that they compress to many blocks.
    fn gzip_of_many_lines(lines: u64) -> Vec<u8> {
        let mut text = csv_text("");
        for n in 0..lines {
            let line = format!(
                "{},{},ITEM {},{},2011-01-01 10:00:00,{}.{:02},{}.0,United Kingdom\n",
                536_365 + n / 7,
                20_000 + n * 37 % 9_973,
                n * 7_919 % 100_003,
                1 + n % 48,
                n % 97,
                n * 13 % 100,
                12_346 + n * 31 % 4_001,
            );
            text.extend_from_slice(line.as_bytes());
        }
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(&text).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn opens_gzip_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("lines.csv.gz");
        write_gzip(&path, &csv_text(TWO_LINES));

        assert_eq!(check_input(&path).unwrap(), InputFormat::Gzip);
        let lines: Vec<LineResult> = LineReader::open(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].as_ref().unwrap().stock_code, "71053");
        assert_eq!(count_data_lines_in_file(&path).unwrap(), 2);
    }

    #[test]
    fn opens_plain_csv_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("lines.csv");
        std::fs::write(&path, csv_text(TWO_LINES)).unwrap();

        assert_eq!(check_input(&path).unwrap(), InputFormat::Plain);
        let lines: Vec<LineResult> = LineReader::open(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].as_ref().unwrap().line, 2);
        assert_eq!(lines[1].as_ref().unwrap().stock_code, "71053");
        assert_eq!(count_data_lines_in_file(&path).unwrap(), 2);
    }

    #[test]
    fn binary_file_is_not_text() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("random.bin");
        std::fs::write(&path, b"\x00\x9c\xff\x01garbage\x02\nmore\n").unwrap();

        let error = check_input(&path).unwrap_err();
        let ReadError::Header {
            input,
            format,
            found,
            ..
        } = &error
        else {
            panic!("expected ReadError::Header, got {error:?}");
        };
        assert_eq!(input, &path.display().to_string());
        assert_eq!(*format, Some(InputFormat::Plain));
        assert_eq!(*found, None);
        let message = error.to_string();
        assert!(message.contains("gzip magic bytes 1f 8b"), "{message}");
        assert!(message.contains("bytes that are not text"), "{message}");
        assert!(LineReader::open(&path).unwrap().next().unwrap().is_err());
    }

    #[test]
    fn long_wrong_header_is_cut() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("other.csv");
        let header = "a,".repeat(200);
        std::fs::write(&path, format!("{header}\n1,2\n")).unwrap();

        let error = check_input(&path).unwrap_err();
        let ReadError::Header { found, .. } = &error else {
            panic!("expected ReadError::Header, got {error:?}");
        };
        let found = found.as_deref().unwrap();
        assert_eq!(found.chars().count(), MAX_SHOWN_HEADER_CHARS + 1);
        assert!(found.ends_with('…'), "{found}");
    }

    #[test]
    fn empty_file_is_empty_error() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("empty.csv.gz");
        std::fs::write(&path, b"").unwrap();

        let error = check_input(&path).unwrap_err();
        assert!(
            matches!(&error, ReadError::Empty { path: p } if p == &path),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("empty.csv.gz is empty"),
            "{error}"
        );
        assert!(count_data_lines_in_file(&path).is_err());
    }

    #[test]
    fn directory_is_rejected() {
        let directory = tempfile::tempdir().unwrap();
        let error = check_input(directory.path()).unwrap_err();
        assert!(
            matches!(&error, ReadError::Directory { path } if path == directory.path()),
            "{error:?}"
        );
        assert!(error.to_string().contains("is a directory"), "{error}");
    }

    #[test]
    fn truncated_gzip_names_line_reached() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("cut.csv.gz");
        let whole = gzip_of_many_lines(5_000);
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();

        // The header check reads only the start, so it passes.
        assert_eq!(check_input(&path).unwrap(), InputFormat::Gzip);
        let mut reader = LineReader::open(&path).unwrap();
        let parsed = reader.by_ref().take_while(Result::is_ok).count() as u64;
        assert!(parsed > 100, "only {parsed} lines before the error");
        assert!(parsed < 5_000, "{parsed} lines read from half a file");
        assert!(reader.next().is_none());

        let mut reader = LineReader::open(&path).unwrap();
        let error = reader.find_map(Result::err).unwrap();
        let ReadError::Truncated { input, line, .. } = &error else {
            panic!("expected ReadError::Truncated, got {error:?}");
        };
        assert_eq!(input, &path.display().to_string());
        assert_eq!(*line, parsed + 1);
        let message = error.to_string();
        assert!(message.contains("cut.csv.gz"), "{message}");
        assert!(message.contains(&format!("after line {line}")), "{message}");
        assert!(message.contains("truncated"), "{message}");

        let counted = count_data_lines_in_file(&path).unwrap_err();
        assert!(
            matches!(counted, ReadError::Truncated { .. }),
            "{counted:?}"
        );
    }

    #[test]
    fn corrupt_gzip_is_read_error() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("corrupt.csv.gz");
        // The gzip magic bytes followed by a header with an unknown compression method.
        std::fs::write(&path, b"\x1f\x8b\x63\x00\x00\x00\x00\x00\x00\x03rest").unwrap();

        let mut reader = LineReader::open(&path).unwrap();
        let error = reader.next().unwrap().unwrap_err();
        assert!(
            matches!(error, ReadError::Read { line: 0, .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert_eq!(
            message,
            format!("failed to decompress {}", path.display()),
            "{error:?}"
        );
        assert!(reader.next().is_none());
        assert!(count_data_lines_in_file(&path).is_err());
    }

    #[test]
    fn missing_file_is_open_error() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("missing.csv.gz");
        let error = LineReader::open(&path).err().unwrap();
        assert!(matches!(error, ReadError::Open { .. }), "{error:?}");
        assert!(error.to_string().contains("missing.csv.gz"), "{error}");
    }

    #[test]
    fn count_lines_with_and_without_final_newline() {
        assert_eq!(count_data_lines(&b""[..]).unwrap(), 0);
        assert_eq!(count_data_lines(HEADER.as_bytes()).unwrap(), 0);
        assert_eq!(count_data_lines(&csv_text("a\nb\n")[..]).unwrap(), 2);
        assert_eq!(count_data_lines(&csv_text("a\nb")[..]).unwrap(), 2);
    }
}
