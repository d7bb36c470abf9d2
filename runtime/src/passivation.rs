//! Passivation of the least recently used actors when too many are active.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use aether_core::{EventStore, Snapshotter};
use tracing::info;

use crate::shared::Shared;

/// Asks the least recently used VMs to stop until the count is back under the limit, with a
/// tenth of the limit as headroom so the sweep does not run on every activation. Runs at most
/// once at a time.
pub(crate) fn evict_least_recently_used<S: EventStore + Snapshotter>(shared: &Arc<Shared<S>>) {
    if shared.evicting.swap(true, Ordering::AcqRel) {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let active = shared.active.load(Ordering::Relaxed);
        let limit = shared.config.max_active;
        let target = limit - limit / 10;
        if active > target {
            let mut candidates = Vec::with_capacity(active);
            for kind in shared.kinds.values() {
                kind.collect_last_used(&mut candidates);
            }
            let excess = active - target;
            if excess < candidates.len() {
                candidates.select_nth_unstable_by_key(excess, |(last_used, _)| *last_used);
            }
            candidates.truncate(excess);
            info!(
                active,
                limit,
                passivating = candidates.len(),
                "too many active actors; passivating the least recently used"
            );
            for (_, actor) in candidates {
                if let Some(kind) = shared.kinds.get(actor.kind.as_str()) {
                    kind.request_stop(&actor.id);
                }
            }
        }
        shared.evicting.store(false, Ordering::Release);
    });
}
