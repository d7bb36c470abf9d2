//! The head signal of live subscriptions: `LISTEN` for the `NOTIFY` of every append, plus a slow
//! poll of the highest position.
//!
//! Notifications are not stored: those sent while the `LISTEN` connection is down are lost. So
//! the head is polled after every reconnect and every poll interval. A subscriber misses no
//! event, but may receive it up to one interval late.

use std::sync::Arc;
use std::time::Duration;

use aether_core::Position;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// Wait before a new `LISTEN` attempt after a failed one.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

const MAX_POSITION: &str = "SELECT coalesce(max(position), 0) FROM aether_events";

/// Background tasks that move the head signal. Dropping this stops them.
pub(crate) struct HeadWatch {
    listen: JoinHandle<()>,
    poll: JoinHandle<()>,
}

impl HeadWatch {
    /// Starts listening on `channel` on a connection of its own, and polling through `pool`.
    pub(crate) fn start(
        connect: PgConnectOptions,
        acquire_timeout: Duration,
        pool: PgPool,
        channel: String,
        head: Arc<watch::Sender<Position>>,
        poll_interval: Duration,
    ) -> Self {
        // The listener keeps its connection for as long as it runs, so it gets a pool of its own
        // instead of taking one from the store's pool.
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(connect);
        let listen = tokio::spawn(listen(
            listen_pool,
            pool.clone(),
            channel,
            Arc::clone(&head),
        ));
        let poll = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(poll_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                poll_head(&pool, &head).await;
            }
        });
        Self { listen, poll }
    }
}

impl Drop for HeadWatch {
    fn drop(&mut self) {
        self.listen.abort();
        self.poll.abort();
    }
}

async fn listen(
    listen_pool: PgPool,
    pool: PgPool,
    channel: String,
    head: Arc<watch::Sender<Position>>,
) {
    let mut listener: Option<PgListener> = None;
    let mut failures = 0u32;
    loop {
        // Open the listener. Events committed before LISTEN took effect are found by the poll.
        let Some(active) = listener.as_mut() else {
            match open_listener(&listen_pool, &channel).await {
                Ok(opened) => {
                    if failures > 0 {
                        info!(channel, "listening for appends again");
                    }
                    failures = 0;
                    listener = Some(opened);
                    poll_head(&pool, &head).await;
                }
                Err(err) => {
                    log_failure(&mut failures, &channel, &err);
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            }
            continue;
        };

        match active.try_recv().await {
            Ok(Some(notification)) => match notification.payload().parse::<u64>() {
                Ok(position) => raise(&head, Position::new(position)),
                Err(_) => poll_head(&pool, &head).await,
            },
            Ok(None) => {
                // The connection was lost and opened again; notifications in between are gone.
                debug!(channel, "listen connection re-established");
                poll_head(&pool, &head).await;
            }
            Err(err) => {
                log_failure(&mut failures, &channel, &err);
                listener = None;
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        }
    }
}

async fn open_listener(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// Logs the first failure of a series at `warn` and the rest at `debug`, so a server that stays
/// down does not flood the log.
fn log_failure(failures: &mut u32, channel: &str, err: &sqlx::Error) {
    *failures += 1;
    if *failures == 1 {
        warn!(channel, error = %err, "listening for appends failed, retrying every second");
    } else {
        debug!(channel, failures = *failures, error = %err, "listening for appends failed again");
    }
}

/// Reads the highest position and raises the head signal to it. A failure is left to the next
/// poll: subscribers see the error on their own reads.
async fn poll_head(pool: &PgPool, head: &watch::Sender<Position>) {
    match sqlx::query(MAX_POSITION).fetch_one(pool).await {
        Ok(row) => {
            if let Ok(position) = row.try_get::<i64, _>(0) {
                raise(head, Position::new(u64::try_from(position).unwrap_or(0)));
            }
        }
        Err(err) => debug!(error = %err, "polling the highest position failed"),
    }
}

/// Moves the head signal up to `position`. A lower or equal value wakes no subscriber.
pub(crate) fn raise(head: &watch::Sender<Position>, position: Position) {
    head.send_if_modified(|current| {
        let moved = position > *current;
        if moved {
            *current = position;
        }
        moved
    });
}
