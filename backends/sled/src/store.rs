//! [`SledStore`]: the [`EventStore`] and [`Snapshotter`] on an embedded sled database.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aether_core::subscription::{Page, follow};
use aether_core::{
    ActorRef, AppendOutcome, EventFilter, EventStore, EventStream, ExpectedVersion, NewEvent,
    Position, RecordedEvent, Snapshot, Snapshotter, StoreError, StoreLimits, Version,
};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, instrument};

use crate::error::{SledError, backend};
use crate::keys;
use crate::options::{FlushMode, SledOptions};
use crate::read::{self, ActorScan};
use crate::record;
use crate::writer::{self, Counters, Request, Workers, WriterSettings};

/// Pages of encoded records that a background read may have ready before the caller takes them:
/// at most 4 × 256 events or 4 × 1 MiB of records.
const READ_AHEAD_PAGES: usize = 4;

/// Pause between attempts to take a database's file lock.
const LOCK_RETRY: Duration = Duration::from_millis(10);

/// An [`EventStore`] and [`Snapshotter`] in an embedded sled database.
///
/// Clones share one database. One writer thread checks versions and applies all writes. With
/// [`FlushMode::Sync`] (the default) an append is acknowledged only after sled has synced it to
/// disk, and appends that arrive during a flush share the next one. Reads run on tokio's blocking
/// threads in pages of 256 events. With [`FlushMode::Sync`] they show only synced events.
///
/// Opening and dropping block the calling thread: opening while sled recovers its log, dropping
/// the last handle while the writer stores the requests still queued and the last flush ends.
/// Open read streams and subscriptions keep the database open until they are dropped.
///
/// ```no_run
/// use aether_core::{ActorRef, EventStore, ExpectedVersion, NewEvent};
/// use aether_sled::SledStore;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SledStore::open("data/events")?;
/// let actor = ActorRef::parse("invoice", "536365")?;
/// let outcome = store
///     .append(&actor, ExpectedVersion::NoEvents, vec![NewEvent::new("Opened", "{}")])
///     .await?;
/// assert_eq!(outcome.version.get(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SledStore {
    shared: Arc<Shared>,
}

/// Figures about the work of a [`SledStore`] since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SledStats {
    /// Appends stored.
    pub appends: u64,
    /// sled batches applied. Each contains one or more appends or snapshots.
    pub batches: u64,
    /// Flushes to disk made for acknowledgements. Always 0 with [`FlushMode::Periodic`].
    pub flushes: u64,
}

struct Shared {
    // Field order is drop order: dropping `requests` lets the writer finish its queue and stop,
    // then dropping `workers` waits for the writer and the flusher before the database closes.
    requests: mpsc::Sender<Request>,
    #[allow(dead_code, reason = "held only so that its Drop joins the threads")]
    workers: Workers,
    reader: Reader,
    limits: StoreLimits,
    counters: Arc<Counters>,
    path: Option<PathBuf>,
}

/// The part of the store that read streams keep: the database and the durable position.
#[derive(Clone)]
struct Reader {
    db: sled::Db,
    /// Position of the last event synced to disk (or applied, with [`FlushMode::Periodic`]).
    durable: Arc<watch::Sender<Position>>,
}

impl SledStore {
    /// Opens or creates the store in the folder `path` with default [`SledOptions`].
    ///
    /// # Errors
    ///
    /// See [`SledStore::open_with`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SledError> {
        Self::open_with(SledOptions::new(path))
    }

    /// Opens a store that sled deletes when the last handle is dropped; see
    /// [`SledOptions::temporary`].
    ///
    /// # Errors
    ///
    /// See [`SledStore::open_with`].
    pub fn temporary() -> Result<Self, SledError> {
        Self::open_with(SledOptions::temporary())
    }

    /// Opens or creates a store with `options`.
    ///
    /// # Errors
    ///
    /// - [`SledError::Locked`] when another process or handle still held the folder's lock
    ///   after [`SledOptions::lock_timeout`].
    /// - [`SledError::Open`] when sled cannot open the folder for another reason, such as a
    ///   missing permission.
    /// - [`SledError::ForeignDatabase`] or [`SledError::UnsupportedLayout`] for a database this
    ///   version cannot use.
    /// - [`SledError::Corrupt`] when the position index cannot be read.
    /// - [`SledError::Spawn`] when a thread cannot be started.
    pub fn open_with(options: SledOptions) -> Result<Self, SledError> {
        let path_for_errors = options
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("temporary"));

        // Open sled. In sync mode every acknowledgement flushes, so sled's own timer is off.
        let mut config = sled::Config::new()
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(match options.flush_mode {
                FlushMode::Sync => None,
                FlushMode::Periodic(every) => {
                    Some(every.as_millis().clamp(1, u128::from(u64::MAX)) as u64)
                }
            });
        config = match &options.path {
            Some(path) => config.path(path),
            None => config.temporary(true),
        };
        let db = open_when_unlocked(&config, options.lock_timeout).map_err(|source| {
            let path = path_for_errors.clone();
            if is_lock_held(&source) {
                SledError::Locked {
                    path,
                    waited: options.lock_timeout,
                    source,
                }
            } else {
                SledError::Open { path, source }
            }
        })?;
        check_layout(&db, &path_for_errors)?;

        // Continue the positions after the last stored event.
        let next_position = read::next_position(&db)?;
        let (durable, _) = watch::channel(Position::new(next_position.get() - 1));
        let durable = Arc::new(durable);

        let counters = Arc::new(Counters::default());
        let (requests, receiver) = mpsc::channel(options.max_batch.saturating_mul(4));
        let workers = writer::spawn(
            db.clone(),
            WriterSettings {
                flush_mode: options.flush_mode,
                max_batch: options.max_batch,
                head_cache_capacity: options.head_cache_capacity,
                next_position,
            },
            receiver,
            durable.clone(),
            counters.clone(),
        )?;

        info!(
            path = %path_for_errors.display(),
            last_position = %Position::new(next_position.get() - 1),
            flush_mode = ?options.flush_mode,
            "opened sled store"
        );
        Ok(Self {
            shared: Arc::new(Shared {
                requests,
                workers,
                reader: Reader { db, durable },
                limits: options.limits,
                counters,
                path: options.path,
            }),
        })
    }

    /// Returns the counts of appends, batches and flushes since the store was opened.
    pub fn stats(&self) -> SledStats {
        let counters = &self.shared.counters;
        SledStats {
            appends: counters.appends.load(Ordering::Relaxed),
            batches: counters.batches.load(Ordering::Relaxed),
            flushes: counters.flushes.load(Ordering::Relaxed),
        }
    }

    async fn send(&self, request: Request) -> Result<(), StoreError> {
        self.shared
            .requests
            .send(request)
            .await
            .map_err(|_| backend("queueing a write", SledError::Stopped))
    }
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.shared.path)
            .field("last_position", &*self.shared.reader.durable.borrow())
            .field("limits", &self.shared.limits)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventStore for SledStore {
    #[instrument(
        level = "debug",
        name = "sled.append",
        skip_all,
        fields(
            actor.kind = %actor.kind,
            actor.id = ?actor.id,
            expected = %expected,
            events = events.len(),
            version = tracing::field::Empty,
        )
    )]
    async fn append(
        &self,
        actor: &ActorRef,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.shared.limits.check_append(actor, &events)?;

        let (reply, outcome) = oneshot::channel();
        self.send(Request::Append {
            actor: actor.clone(),
            expected,
            events,
            reply,
        })
        .await?;
        let outcome = outcome
            .await
            .map_err(|_| backend(format!("appending to {actor}"), SledError::Stopped))??;

        tracing::Span::current().record("version", outcome.version.get());
        Ok(outcome)
    }

    fn read(&self, actor: &ActorRef, from: Version) -> EventStream {
        let reader = &self.shared.reader;
        let durable = *reader.durable.borrow();
        let scan = ActorScan::new(
            &reader.db,
            actor.clone(),
            from.max(Version::new(1)),
            durable,
        );
        scan_in_background(scan)
    }

    async fn head(&self, actor: &ActorRef) -> Result<Version, StoreError> {
        // One leaf lookup, normally from sled's cache, so it runs inline.
        let reader = &self.shared.reader;
        let durable = *reader.durable.borrow();
        read::durable_head(&reader.db, actor, &keys::event_prefix(actor), durable)
    }

    fn read_all(&self, after: Position, filter: EventFilter) -> EventStream {
        let reader = self.shared.reader.clone();
        let end = *reader.durable.borrow();
        if after >= end {
            return stream::empty().boxed();
        }

        let read_page = move |after| {
            let page = read::position_page(&reader.db, after, end, &filter)?;
            // A page that moved nothing would repeat forever; it only happens past the end.
            let next =
                (page.scanned_to > after && page.scanned_to < end).then_some(page.scanned_to);
            Ok((page.events, next))
        };
        read_ahead(after, read_page)
    }

    async fn last_position(&self) -> Result<Position, StoreError> {
        // The last event whose flush has finished, which is what every read can see.
        Ok(*self.shared.reader.durable.borrow())
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> EventStream {
        let reader = self.shared.reader.clone();
        let head = reader.durable.subscribe();
        let filter = Arc::new(filter);
        follow(after, head, move |after| {
            let reader = reader.clone();
            let filter = filter.clone();
            async move {
                let end = *reader.durable.borrow();
                reader.position_page(after, end, filter).await
            }
        })
    }

    fn limits(&self) -> StoreLimits {
        self.shared.limits
    }
}

#[async_trait]
impl Snapshotter for SledStore {
    #[instrument(
        level = "debug",
        name = "sled.save_snapshot",
        skip_all,
        fields(actor.kind = %actor.kind, actor.id = ?actor.id, version = %snapshot.version)
    )]
    async fn save_snapshot(
        &self,
        actor: &ActorRef,
        snapshot: Snapshot,
    ) -> Result<bool, StoreError> {
        self.shared.limits.check_snapshot(actor, &snapshot)?;

        let (reply, saved) = oneshot::channel();
        self.send(Request::Snapshot {
            actor: actor.clone(),
            snapshot,
            reply,
        })
        .await?;
        saved
            .await
            .map_err(|_| backend(format!("saving a snapshot of {actor}"), SledError::Stopped))?
    }

    async fn load_snapshot(&self, actor: &ActorRef) -> Result<Option<Snapshot>, StoreError> {
        // NOTE: unlike events, a snapshot is visible as soon as the writer applied it, before its
        // flush ends. Its version never exceeds the events applied before it.
        let value = self
            .shared
            .reader
            .db
            .get(keys::snapshot_key(actor))
            .map_err(|err| backend(format!("loading the snapshot of {actor}"), err))?;
        let Some(value) = value else {
            return Ok(None);
        };
        record::decode_snapshot(value)
            .map(Some)
            .map_err(|err| StoreError::corrupt(format!("snapshot of {actor}"), err.to_string()))
    }
}

impl Reader {
    /// Reads one page of the position index on a blocking thread.
    async fn position_page(
        &self,
        after: Position,
        end: Position,
        filter: Arc<EventFilter>,
    ) -> Result<Page, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || read::position_page(&db, after, end, &filter))
            .await
            .map_err(|err| backend("reading the position index", SledError::ReadTask(err)))?
    }
}

/// Streams the events of `scan`, read by one blocking task that runs ahead of the caller.
///
/// The task sends pages of encoded records through a channel with room for [`READ_AHEAD_PAGES`]
/// pages, so it reads on while the caller decodes and consumes, and waits when the caller falls
/// behind. It stops after the last page or when the stream is dropped, which closes the channel.
fn scan_in_background(scan: ActorScan) -> EventStream {
    type Pages = mpsc::Receiver<Result<Vec<(Version, sled::IVec)>, StoreError>>;
    enum State {
        Start(Box<ActorScan>),
        Receiving {
            actor: ActorRef,
            pages: Pages,
            task: tokio::task::JoinHandle<()>,
        },
    }

    let pages = stream::try_unfold(Some(State::Start(Box::new(scan))), |state| async move {
        // The task starts on the first poll, so `read` works outside a runtime too.
        let (actor, mut pages, task) = match state {
            None => return Ok(None),
            Some(State::Start(mut scan)) => {
                let actor = scan.actor().clone();
                let (sender, pages) = mpsc::channel(READ_AHEAD_PAGES);
                let task = tokio::task::spawn_blocking(move || {
                    while !scan.is_done() {
                        let page = scan.next_page();
                        let (failed, empty) = match &page {
                            Ok(records) => (false, records.is_empty()),
                            Err(_) => (true, false),
                        };
                        if empty || sender.blocking_send(page).is_err() || failed {
                            break;
                        }
                    }
                });
                (actor, pages, task)
            }
            Some(State::Receiving { actor, pages, task }) => (actor, pages, task),
        };

        let Some(page) = pages.recv().await else {
            // A closed channel ends the read, unless the task panicked.
            return match task.await {
                Ok(()) => Ok(None),
                Err(err) => Err(backend(
                    format!("reading {actor}"),
                    SledError::ReadTask(err),
                )),
            };
        };
        let page = page?;
        let next = State::Receiving {
            actor: actor.clone(),
            pages,
            task,
        };
        let events = page
            .into_iter()
            .map(move |(version, value)| read::decode_event(&actor, version, value));
        Ok(Some((stream::iter(events), Some(next))))
    });
    pages.try_flatten().boxed()
}

/// Streams the pages of events that `read_page` reads on tokio's blocking threads, starting at
/// `first`.
///
/// `read_page` returns a page and the cursor of the next page, if there is one. The next page is
/// read while the caller consumes the current one, so at most two pages are in memory.
fn read_ahead<C, R>(first: C, read_page: R) -> EventStream
where
    C: Send + 'static,
    R: Fn(C) -> Result<(Vec<RecordedEvent>, Option<C>), StoreError> + Send + Sync + 'static,
{
    type Reading<C> = tokio::task::JoinHandle<Result<(Vec<RecordedEvent>, Option<C>), StoreError>>;
    enum Next<C> {
        Start(C),
        Reading(Reading<C>),
        Done,
    }

    let read_page = Arc::new(read_page);
    let spawn = move |cursor: C| -> Reading<C> {
        let read_page = read_page.clone();
        tokio::task::spawn_blocking(move || read_page(cursor))
    };
    let pages = stream::try_unfold(Next::Start(first), move |next| {
        // The first read starts on the first poll, so `read_all` works outside a runtime too.
        let reading = match next {
            Next::Start(cursor) => Some(spawn(cursor)),
            Next::Reading(reading) => Some(reading),
            Next::Done => None,
        };
        let spawn = spawn.clone();
        async move {
            let Some(reading) = reading else {
                return Ok::<_, StoreError>(None);
            };
            let (events, cursor) = reading
                .await
                .map_err(|err| backend("reading events", SledError::ReadTask(err)))??;
            let next = match cursor {
                Some(cursor) => Next::Reading(spawn(cursor)),
                None => Next::Done,
            };
            Ok(Some((stream::iter(events.into_iter().map(Ok)), next)))
        }
    });
    pages.try_flatten().boxed()
}

/// Opens `config`, retrying while another handle holds the database's file lock, for at most
/// `timeout`.
fn open_when_unlocked(config: &sled::Config, timeout: Duration) -> sled::Result<sled::Db> {
    let deadline = Instant::now() + timeout;
    loop {
        match config.open() {
            Err(err) if is_lock_held(&err) && Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY);
            }
            result => return result,
        }
    }
}

/// Returns whether `err` is sled's report that another handle holds the database's file lock.
fn is_lock_held(err: &sled::Error) -> bool {
    // sled 0.34 reports a held lock only through this message, as an I/O error of kind `Other`.
    matches!(err, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

/// Checks the layout marker, writing it into a new, empty database.
fn check_layout(db: &sled::Db, path: &Path) -> Result<(), SledError> {
    match db.get(keys::FORMAT_KEY)? {
        Some(found) if found.as_ref() == [keys::LAYOUT_VERSION] => Ok(()),
        Some(found) => Err(SledError::UnsupportedLayout {
            found: found.first().copied().unwrap_or(0),
            supported: keys::LAYOUT_VERSION,
        }),
        None if db.first()?.is_none() => {
            db.insert(keys::FORMAT_KEY, &[keys::LAYOUT_VERSION])?;
            db.flush()?;
            Ok(())
        }
        None => Err(SledError::ForeignDatabase {
            path: path.to_path_buf(),
        }),
    }
}
