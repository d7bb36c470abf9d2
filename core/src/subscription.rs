//! A live subscription built from paged reads and a head-position signal.
//!
//! Stores that can read a page of events after a position and publish their head position on a
//! [`tokio::sync::watch`] channel get [`EventStore::subscribe`](crate::EventStore::subscribe)
//! from [`follow`]: it reads pages until it is caught up, then waits for the head to move.

use std::future::Future;

use futures::stream;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::store::EventStream;
use crate::version::Position;

/// One page of a store-wide read.
#[derive(Debug, Default)]
pub struct Page {
    /// The events found, in position order, already filtered.
    pub events: Vec<RecordedEvent>,
    /// The highest position the read looked at, whether or not its event passed the filter. The
    /// next page starts after it.
    pub scanned_to: Position,
}

/// Builds a subscription from `read_page`, which reads the page after a position, and `head`,
/// which carries the store's head position. The stream ends after an error, or when the
/// sender of `head` is dropped and every stored event was delivered.
pub fn follow<F, Fut>(after: Position, head: watch::Receiver<Position>, read_page: F) -> EventStream
where
    F: Fn(Position) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Page, StoreError>> + Send + 'static,
{
    struct State<F> {
        after: Position,
        head: watch::Receiver<Position>,
        read_page: F,
        buffer: std::vec::IntoIter<RecordedEvent>,
        failed: bool,
    }

    let state = State {
        after,
        head,
        read_page,
        buffer: Vec::new().into_iter(),
        failed: false,
    };
    let stream = stream::unfold(state, |mut state| async move {
        if state.failed {
            return None;
        }
        loop {
            if let Some(event) = state.buffer.next() {
                return Some((Ok(event), state));
            }

            // Mark the current head as seen before reading, so a store that moves during the
            // read wakes the wait below.
            state.head.borrow_and_update();
            let page = match (state.read_page)(state.after).await {
                Ok(page) => page,
                Err(err) => {
                    state.failed = true;
                    return Some((Err(err), state));
                }
            };
            let progressed = page.scanned_to > state.after;
            if progressed {
                state.after = page.scanned_to;
            }
            if !page.events.is_empty() {
                state.buffer = page.events.into_iter();
                continue;
            }
            if progressed {
                continue;
            }
            if state.head.changed().await.is_err() {
                return None;
            }
        }
    });
    Box::pin(stream)
}
