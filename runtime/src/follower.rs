//! Following other writers: one store subscription per runtime that notifies active actors of
//! events stored by other nodes or tools, so they apply them before their next command.
//!
//! NOTE: the subscription delivers this runtime's own events too, which are then skipped by
//! node name, so a runtime that is its store's only writer pays one extra read per stored event.
//! Such a runtime can turn following off with `follow_store(false)`.

use std::sync::Arc;
use std::time::Duration;

use aether_core::{ActorKind, EventFilter, EventStore, Position, Snapshotter};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::shared::Shared;

/// Maximum pause before the subscription is opened again after an error.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The running follower task.
pub(crate) struct Follower {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Follower {
    pub(crate) async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

pub(crate) fn start<S: EventStore + Snapshotter>(shared: Arc<Shared<S>>) -> Follower {
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run(shared, stop_rx));
    Follower { stop, task }
}

async fn run<S: EventStore + Snapshotter>(shared: Arc<Shared<S>>, mut stop: watch::Receiver<bool>) {
    let kinds: Vec<ActorKind> = shared
        .kinds
        .keys()
        .filter_map(|k| ActorKind::new(*k).ok())
        .collect();
    let node = shared.config.node.clone();
    let mut after: Option<Position> = None;
    let mut backoff = Duration::from_millis(100);

    loop {
        // Start at the newest event: history is read by activations, not by the follower.
        let start = match after {
            Some(position) => position,
            None => match tokio::select! {
                _ = stop.changed() => return,
                result = shared.store.last_position() => result,
            } {
                Ok(position) => position,
                Err(err) => {
                    warn!(error = %err, ?backoff, "could not read the store's last position; retrying");
                    if wait_or_stop(&mut stop, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        after = Some(start);
        debug!(after = %start, "following the store");

        let mut events = shared
            .store
            .subscribe(start, EventFilter::kinds(kinds.clone()));
        loop {
            let next = tokio::select! {
                _ = stop.changed() => return,
                next = events.next() => next,
            };
            match next {
                Some(Ok(event)) => {
                    backoff = Duration::from_millis(100);
                    after = Some(event.position);
                    if event.metadata.node.as_deref() == Some(node.as_str()) {
                        continue;
                    }
                    if let Some(kind) = shared.kinds.get(event.actor.kind.as_str()) {
                        kind.notify(&event.actor.id, event.version);
                    }
                }
                Some(Err(err)) => {
                    warn!(error = %err, ?backoff, "store subscription failed; subscribing again");
                    break;
                }
                None => {
                    warn!(?backoff, "store subscription ended; subscribing again");
                    break;
                }
            }
        }
        if wait_or_stop(&mut stop, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Sleeps for `pause` unless the runtime stops first. Returns whether it stopped.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::select! {
        _ = stop.changed() => true,
        () = tokio::time::sleep(pause) => *stop.borrow(),
    }
}
