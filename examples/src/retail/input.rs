//! Opening an input file, gzip-compressed or plain.
//!
//! [`InputFile`] distinguishes the two by the gzip magic bytes `1f 8b` at the start of the file.
//! No file with the Online Retail header can start with them, because the header is ASCII text.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::source::ReadError;

/// The first two bytes of every gzip member (RFC 1952, section 2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The format of an input file, detected from its first two bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// The file starts with the gzip magic bytes `1f 8b` and is decompressed while it is read.
    /// Concatenated gzip members are read as one stream.
    Gzip,
    /// The file does not start with the gzip magic bytes and is read as CSV text.
    Plain,
}

/// An input file open for reading: decompressed when it is gzip-compressed, read as it is
/// otherwise.
pub struct InputFile {
    path: PathBuf,
    format: InputFormat,
    reader: Box<dyn Read + Send>,
}

impl InputFile {
    /// Opens the file at `path` and reads its first two bytes to detect its [`InputFormat`].
    ///
    /// # Errors
    ///
    /// [`ReadError::Open`] when the file cannot be opened or read, [`ReadError::Directory`] for
    /// a directory and [`ReadError::Empty`] for a file of 0 bytes.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let path = path.as_ref();
        let open_error = |source| ReadError::Open {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(open_error)?;
        // Linux opens a directory for reading, and only the first read fails.
        if file.metadata().map_err(open_error)?.is_dir() {
            return Err(ReadError::Directory {
                path: path.to_owned(),
            });
        }

        // Put the bytes read back in front of the rest, so that this works without seeking.
        let mut magic = Vec::with_capacity(GZIP_MAGIC.len());
        (&mut file)
            .take(GZIP_MAGIC.len() as u64)
            .read_to_end(&mut magic)
            .map_err(open_error)?;
        if magic.is_empty() {
            return Err(ReadError::Empty {
                path: path.to_owned(),
            });
        }
        let format = if magic == GZIP_MAGIC {
            InputFormat::Gzip
        } else {
            InputFormat::Plain
        };
        let whole = io::Cursor::new(magic).chain(file);
        let reader: Box<dyn Read + Send> = match format {
            InputFormat::Gzip => Box::new(MultiGzDecoder::new(whole)),
            InputFormat::Plain => Box::new(whole),
        };
        Ok(InputFile {
            path: path.to_owned(),
            format,
            reader,
        })
    }

    /// Returns the path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the format detected from the first two bytes.
    pub fn format(&self) -> InputFormat {
        self.format
    }
}

impl Read for InputFile {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buffer)
    }
}
