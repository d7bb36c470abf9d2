//! Reads of the tree: heads, pages of one actor's events and pages of the position index.
//!
//! These functions block on sled and are called from `spawn_blocking` tasks or, for single-key
//! lookups, directly. Reads stop at the durable position: events that the writer applied but the
//! flusher has not yet synced stay invisible until their flush completes.

use std::sync::Arc;

use aether_core::subscription::Page;
use aether_core::{ActorRef, EventFilter, Position, RecordedEvent, StoreError, Version};

use crate::error::{SledError, backend};
use crate::keys;
use crate::record::{self, DecodeError};

/// Maximum number of events in one page of a read.
pub(crate) const PAGE_SIZE: usize = 256;

/// Record bytes after which a page of one actor's events ends early, so that pages of large
/// events stay small. A page has at least one event.
const PAGE_BYTES: usize = 1024 * 1024;

/// Maximum number of positions one page of a store-wide read looks at.
const MAX_SCANNED: u64 = 4096;

/// Returns the version in `actor`'s last event key, durable or not: the head the writer builds
/// on.
pub(crate) fn last_version(
    tree: &sled::Tree,
    actor: &ActorRef,
    prefix: &[u8],
) -> Result<Version, StoreError> {
    let Some(last) = tree.scan_prefix(prefix).next_back() else {
        return Ok(Version::ZERO);
    };
    let (key, _) = last.map_err(|err| backend(format!("reading the head of {actor}"), err))?;
    keys::version_of_event_key(prefix, &key).ok_or_else(|| bad_key(actor, &key))
}

/// Returns the version of `actor`'s last event at or before the `durable` position.
pub(crate) fn durable_head(
    tree: &sled::Tree,
    actor: &ActorRef,
    prefix: &[u8],
    durable: Position,
) -> Result<Version, StoreError> {
    // Usually the last event is durable. Only events of a flush in progress are stepped over.
    for item in tree.scan_prefix(prefix).rev() {
        let (key, value) =
            item.map_err(|err| backend(format!("reading the head of {actor}"), err))?;
        let version =
            keys::version_of_event_key(prefix, &key).ok_or_else(|| bad_key(actor, &key))?;
        let position =
            record::event_position(&value).map_err(|err| corrupt_event(actor, version, err))?;
        if position <= durable {
            return Ok(version);
        }
    }
    Ok(Version::ZERO)
}

/// A scan of one actor's event records from a version up to the durable position, read page by
/// page with one sled iterator.
pub(crate) struct ActorScan {
    tree: sled::Tree,
    actor: ActorRef,
    prefix: Arc<[u8]>,
    records: sled::Iter,
    expected: Version,
    durable: Position,
    /// The actor's last durable version, found by the first page.
    last: Option<Version>,
    done: bool,
}

impl ActorScan {
    /// Starts a scan of `actor`'s events from version `from` that ends before the first event
    /// after the `durable` position.
    pub(crate) fn new(
        tree: &sled::Tree,
        actor: ActorRef,
        from: Version,
        durable: Position,
    ) -> Self {
        let prefix: Arc<[u8]> = keys::event_prefix(&actor).into();
        let start = keys::event_key(&prefix, from);
        let end = keys::event_key(&prefix, Version::new(u64::MAX));
        Self {
            tree: tree.clone(),
            records: tree.range(start..=end),
            actor,
            prefix,
            expected: from,
            durable,
            last: None,
            done: false,
        }
    }

    /// Returns the actor being read.
    pub(crate) fn actor(&self) -> &ActorRef {
        &self.actor
    }

    /// Returns whether the scan has read its last page.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Reads up to [`PAGE_SIZE`] more event records, or [`PAGE_BYTES`], with their versions.
    /// After the last page [`ActorScan::is_done`] returns true.
    ///
    /// The records stay encoded, so that the caller's thread decodes them with [`decode_event`]
    /// while this blocking thread reads on.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when a key cannot be read or a version is missing.
    pub(crate) fn next_page(&mut self) -> Result<Vec<(Version, sled::IVec)>, StoreError> {
        // The scan ends at the last durable version rather than checking each record's position,
        // which would load every record into this thread's cache just for that.
        let last = match self.last {
            Some(last) => last,
            None => {
                let last = durable_head(&self.tree, &self.actor, &self.prefix, self.durable)?;
                *self.last.insert(last)
            }
        };

        let actor = &self.actor;
        let mut page = Vec::with_capacity(PAGE_SIZE);
        let mut bytes = 0;
        while page.len() < PAGE_SIZE && bytes < PAGE_BYTES {
            if self.expected > last {
                self.done = true;
                break;
            }
            let Some(item) = self.records.next() else {
                // Every version from the start of the read up to the durable head must be stored.
                self.done = true;
                return Err(missing_version(actor, self.expected, None));
            };
            let (key, value) = item.map_err(|err| {
                backend(
                    format!("reading {actor} from version {}", self.expected),
                    err,
                )
            })?;
            let version = keys::version_of_event_key(&self.prefix, &key)
                .ok_or_else(|| bad_key(actor, &key))?;
            if version != self.expected {
                return Err(missing_version(actor, self.expected, Some(version)));
            }
            bytes += value.len();
            page.push((version, value));
            self.expected = version.next();
        }
        Ok(page)
    }
}

fn missing_version(actor: &ActorRef, version: Version, next: Option<Version>) -> StoreError {
    let reason = match next {
        Some(next) => format!("the event is missing; the next stored version is {next}"),
        None => "the event is missing; no later version is stored".to_owned(),
    };
    StoreError::corrupt(format!("{actor} version {version}"), reason)
}

/// Decodes an event record of `actor` read by [`ActorScan`].
pub(crate) fn decode_event(
    actor: &ActorRef,
    version: Version,
    value: sled::IVec,
) -> Result<RecordedEvent, StoreError> {
    record::decode_event(actor, version, value).map_err(|err| corrupt_event(actor, version, err))
}

/// Reads the events after `after` and up to `end` that pass `filter`, in position order: at most
/// [`PAGE_SIZE`] events and [`MAX_SCANNED`] positions.
///
/// # Errors
///
/// [`StoreError::Corrupt`] when a position group or an event record cannot be decoded, or a group
/// names an event that is not stored.
pub(crate) fn position_page(
    tree: &sled::Tree,
    after: Position,
    end: Position,
    filter: &EventFilter,
) -> Result<Page, StoreError> {
    let mut page = Page {
        events: Vec::new(),
        scanned_to: after,
    };
    if after >= end {
        return Ok(page);
    }
    let target = after.get() + 1;
    let read_error = |err| backend(format!("reading events after position {after}"), err);

    // The group that contains `target` is the last one starting at or before it.
    let lowest = keys::position_key(Position::START);
    let start = match tree
        .range(lowest..=keys::position_key(Position::new(target)))
        .next_back()
    {
        Some(item) => item.map_err(read_error)?.0.to_vec(),
        None => keys::position_key(Position::new(target)).to_vec(),
    };

    let mut scanned = 0u64;
    for item in tree.range(start..=keys::position_key(end).to_vec()) {
        let (key, value) = item.map_err(read_error)?;
        let first = keys::position_of_key(&key).ok_or_else(|| {
            StoreError::corrupt(
                format!("key {}", key.escape_ascii()),
                "not a position group key",
            )
        })?;
        let runs = record::decode_group(&value).map_err(|err| {
            StoreError::corrupt(format!("position group {first}"), err.to_string())
        })?;

        let mut run_start = first.get();
        for run in runs {
            let run_end = run_start + u64::from(run.count);
            if run_end <= target {
                run_start = run_end;
                continue;
            }
            if run_start > end.get() {
                return Ok(page);
            }
            let (actor, _) = keys::decode_actor(run.actor).map_err(|err| {
                StoreError::corrupt(format!("position group {first}"), err.to_string())
            })?;
            let skip = target.saturating_sub(run_start);
            let last = (run_end - 1).min(end.get());

            // A run of another actor is stepped over whole.
            if !filter.matches(&actor) {
                scanned += last + 1 - (run_start + skip);
                page.scanned_to = Position::new(last);
            } else {
                for offset in skip..=(last - run_start) {
                    let position = Position::new(run_start + offset);
                    let version = run.first_version.advance(offset);
                    page.events
                        .push(read_event(tree, run.actor, &actor, version, position)?);
                    page.scanned_to = position;
                    scanned += 1;
                    if page.events.len() == PAGE_SIZE {
                        return Ok(page);
                    }
                }
            }

            if page.scanned_to >= end || scanned >= MAX_SCANNED {
                return Ok(page);
            }
            run_start = run_end;
        }
    }
    Ok(page)
}

/// Reads the event a position group entry points to and checks that it is at `position`.
fn read_event(
    tree: &sled::Tree,
    encoded_actor: &[u8],
    actor: &ActorRef,
    version: Version,
    position: Position,
) -> Result<RecordedEvent, StoreError> {
    let key = keys::event_key_of_actor(encoded_actor, version);
    let value = tree
        .get(&key)
        .map_err(|err| backend(format!("reading {actor} version {version}"), err))?
        .ok_or_else(|| {
            StoreError::corrupt(
                format!("position {position}"),
                format!("the position index names {actor} version {version}, which is not stored"),
            )
        })?;
    let event = record::decode_event(actor, version, value)
        .map_err(|err| corrupt_event(actor, version, err))?;
    if event.position != position {
        return Err(StoreError::corrupt(
            format!("{actor} version {version}"),
            format!(
                "the event records position {}, the position index says {position}",
                event.position
            ),
        ));
    }
    Ok(event)
}

/// Computes the position after the last stored event from the last position group.
pub(crate) fn next_position(tree: &sled::Tree) -> Result<Position, SledError> {
    let Some(last) = tree.scan_prefix(keys::POSITION_PREFIX).next_back() else {
        return Ok(Position::new(1));
    };
    let (key, value) = last?;
    let corrupt = |reason: String| SledError::Corrupt {
        location: format!("key {}", key.escape_ascii()),
        reason,
    };
    let first =
        keys::position_of_key(&key).ok_or_else(|| corrupt("not a position group key".into()))?;
    let runs = record::decode_group(&value).map_err(|err| corrupt(err.to_string()))?;
    let events: u64 = runs.iter().map(|run| u64::from(run.count)).sum();
    Ok(Position::new(first.get() + events))
}

fn corrupt_event(actor: &ActorRef, version: Version, err: DecodeError) -> StoreError {
    StoreError::corrupt(format!("{actor} version {version}"), err.to_string())
}

fn bad_key(actor: &ActorRef, key: &[u8]) -> StoreError {
    StoreError::corrupt(
        format!("key {}", key.escape_ascii()),
        format!("an event key of {actor} does not end in an 8-byte version"),
    )
}
