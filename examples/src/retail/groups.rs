//! Reading the CSV into groups of consecutive lines of one invoice, on a blocking thread.
//!
//! The job sends each group from one task, line after line, so an invoice receives its lines in
//! file order, while many groups are in flight at once.

use std::path::Path;

use tokio::sync::mpsc;

use super::invoice::AddLine;
use super::line::MalformedLine;
use super::source::{LineReader, ReadError};

/// One item read from the CSV.
#[derive(Debug)]
pub enum Item {
    /// Consecutive well-formed lines of one invoice, in file order.
    Group(Group),
    /// A line that could not be parsed.
    Malformed(MalformedLine),
}

/// Consecutive lines of one invoice.
#[derive(Debug)]
pub struct Group {
    /// The invoice number.
    pub invoice: String,
    /// The lines as commands, in file order.
    pub lines: Vec<AddLine>,
}

/// Reads the first `limit` data lines of the CSV at `path`, gzip-compressed or plain (every line
/// when `limit` is `None`), and sends them to `items` as groups and malformed lines. Returns the
/// number of data lines read. Stops early without an error when the receiver is dropped.
///
/// Blocks the calling thread, so run it with `tokio::task::spawn_blocking`.
///
/// # Errors
///
/// A [`ReadError`] when the file cannot be opened or read to the end of the limit.
pub fn read_groups(
    path: &Path,
    limit: Option<u64>,
    items: &mpsc::Sender<Item>,
) -> Result<u64, ReadError> {
    let mut reader = LineReader::open(path)?;
    let mut remaining = limit.unwrap_or(u64::MAX);
    let mut current: Option<Group> = None;

    while remaining > 0 {
        let Some(line) = reader.next() else {
            break;
        };
        remaining -= 1;
        let line = match line? {
            Ok(line) => line,
            Err(malformed) => {
                if items.blocking_send(Item::Malformed(malformed)).is_err() {
                    return Ok(reader.lines_read());
                }
                continue;
            }
        };

        // A line of another invoice closes the current group.
        if let Some(group) = current.take_if(|group| group.invoice != line.invoice_no)
            && items.blocking_send(Item::Group(group)).is_err()
        {
            return Ok(reader.lines_read());
        }
        let group = current.get_or_insert_with(|| Group {
            invoice: line.invoice_no.clone(),
            lines: Vec::new(),
        });
        group.lines.push(AddLine::from(line));
    }

    if let Some(group) = current {
        // A dropped receiver means that the job stopped, so the error is of no use to anyone.
        let _ = items.blocking_send(Item::Group(group));
    }
    Ok(reader.lines_read())
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    const TEXT: &str = concat!(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n",
        "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n",
        "536365,71053,LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom\n",
        "536366,22633,SHORT\n",
        "536366,22633,HAND WARMER,6,2010-12-01 08:28:00,1.85,17850.0,United Kingdom\n",
        "536365,22752,LATE LINE,2,2010-12-01 08:26:00,7.65,17850.0,United Kingdom\n",
    );

    fn read(limit: Option<u64>) -> (u64, Vec<Item>) {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("lines.csv.gz");
        let mut encoder = GzEncoder::new(File::create(&path).unwrap(), Compression::fast());
        encoder.write_all(TEXT.as_bytes()).unwrap();
        encoder.finish().unwrap();

        let (sender, mut receiver) = mpsc::channel(16);
        let read = read_groups(&path, limit, &sender).unwrap();
        drop(sender);
        let mut items = Vec::new();
        while let Ok(item) = receiver.try_recv() {
            items.push(item);
        }
        (read, items)
    }

    fn summary(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                Item::Group(group) => {
                    let lines: Vec<String> =
                        group.lines.iter().map(|l| l.line.to_string()).collect();
                    format!("{}:{}", group.invoice, lines.join("+"))
                }
                Item::Malformed(malformed) => format!("malformed:{}", malformed.line),
            })
            .collect()
    }

    // A malformed line is sent at once, so it can come before the open group it interrupts.
    #[test]
    fn groups_follow_file_order() {
        let (read, items) = read(None);
        assert_eq!(read, 5);
        assert_eq!(
            summary(&items),
            ["malformed:4", "536365:2+3", "536366:5", "536365:6"]
        );
    }

    #[test]
    fn limit_counts_malformed_lines() {
        let (read, items) = read(Some(3));
        assert_eq!(read, 3);
        assert_eq!(summary(&items), ["malformed:4", "536365:2+3"]);
    }
}
