//! Read-ahead for paged reads: a task fetches the next page while the consumer works through the
//! current one.
//!
//! The task keeps its pooled connection from page to page while the consumer keeps up, which
//! saves the pool's liveness check on every page. It gives the connection back whenever the
//! consumer falls behind, and after [`PAGES_PER_CONNECTION`] pages in a row, so neither a slow
//! consumer nor a long replay keeps a connection from other callers for long.

use aether_core::{EventStream, RecordedEvent, StoreError};
use futures::future::BoxFuture;
use futures::{StreamExt, stream};
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::error::map_sqlx;

/// Pages fetched on one connection before the task returns it to the pool and queues again.
const PAGES_PER_CONNECTION: usize = 16;

/// Factor by which the pages of a long read grow over the configured page size. Each full page
/// doubles the next one up to this factor, so a long replay crosses fewer page boundaries, where
/// the server waits for the next query.
pub(crate) const MAX_PAGE_GROWTH: usize = 4;

/// Returns the size of the page after a full page of `current` events.
pub(crate) fn grow(current: usize, configured: usize) -> usize {
    current
        .saturating_mul(2)
        .min(configured.saturating_mul(MAX_PAGE_GROWTH))
}

/// One page of events, ending with the error that stopped the read, if any.
pub(crate) type PageEvents = Vec<Result<RecordedEvent, StoreError>>;

/// A read that proceeds one page at a time.
pub(crate) trait PagedRead: Send + 'static {
    /// Describes the read for error messages, such as `reading invoice/1`.
    fn operation(&self) -> String;

    /// Returns whether every page was read.
    fn is_done(&self) -> bool;

    /// Fetches the next page on `conn`. A page that ends with an error ends the read.
    fn next_page<'a>(&'a mut self, conn: &'a mut PgConnection) -> BoxFuture<'a, PageEvents>;
}

/// Turns `read` into a stream of events, fetched one page ahead by a task.
///
/// The task starts when the stream is first polled and hands pages over through a channel with
/// room for one, so at most three pages are in memory: one being consumed, one waiting and one
/// being fetched. Dropping the stream stops the task after its current page.
pub(crate) fn read_ahead(pool: PgPool, read: impl PagedRead) -> EventStream {
    let start = stream::once(async move {
        let (sender, receiver) = mpsc::channel(1);
        tokio::spawn(produce(pool, read, sender));
        stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|page| (page, receiver))
        })
    });
    Box::pin(start.flatten().flat_map(stream::iter))
}

async fn produce(pool: PgPool, mut read: impl PagedRead, sender: mpsc::Sender<PageEvents>) {
    let mut connection = None;
    let mut pages_on_connection = 0;
    while !read.is_done() {
        let conn = match connection.as_mut() {
            Some(conn) => conn,
            None => match pool.acquire().await {
                Ok(conn) => connection.insert(conn),
                Err(err) => {
                    let _ = sender
                        .send(vec![Err(map_sqlx(read.operation(), err))])
                        .await;
                    return;
                }
            },
        };
        let page = read.next_page(conn).await;

        pages_on_connection += 1;
        if pages_on_connection == PAGES_PER_CONNECTION || read.is_done() {
            connection = None;
            pages_on_connection = 0;
        }
        match sender.try_send(page) {
            Ok(()) => {}
            Err(TrySendError::Full(page)) => {
                // The consumer is behind: give the connection back while waiting for it.
                connection = None;
                pages_on_connection = 0;
                if sender.send(page).await.is_err() {
                    return;
                }
            }
            // The consumer dropped the stream.
            Err(TrySendError::Closed(_)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_grow_to_the_cap() {
        assert_eq!(grow(1000, 1000), 2000);
        assert_eq!(grow(2000, 1000), 4000);
        assert_eq!(grow(4000, 1000), 4000);
        assert_eq!(grow(1, 1), 2);
        assert_eq!(grow(usize::MAX, usize::MAX), usize::MAX);
    }
}
