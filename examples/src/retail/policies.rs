//! The runtime of the retail job: three actor kinds and the two policies that connect them.
//!
//! ```text
//!  CSV line ──AddLine──▶ invoice ──LineAdded──┬─▶ policy customer-lines ──▶ customer (if any)
//!                                             └─▶ policy product-sales  ──▶ product
//! ```

use aether::{ActorId, EventStore, RuntimeBuilder, Snapshotter};

use super::customer::{Customer, CustomerCommand, CustomerLine};
use super::invoice::{Invoice, InvoiceEvent};
use super::line::InvoiceKind;
use super::product::{Product, ProductCommand, Sale};

/// Command ids each actor remembers. The largest invoice of the shipped data has 1,114 lines, and
/// a second run must find every one of its line ids still remembered, so the runtime's default
/// of 1,024 is too small.
pub const IDEMPOTENCY_WINDOW: usize = 2048;

/// Events between snapshots of an invoice. Most invoices only get the one taken when they stop.
pub const INVOICE_SNAPSHOT_EVERY: u64 = 100;

/// Events between snapshots of a customer or product. A snapshot carries the idempotency window
/// of up to [`IDEMPOTENCY_WINDOW`] command ids, which made the largest one 258 KB of JSON on the
/// shipped data. These busy actors therefore take one less often, and an activation replays at
/// most this many events.
pub const TOTALS_SNAPSHOT_EVERY: u64 = 1000;

/// Registers the retail actors and policies on a runtime builder.
pub fn register<S: EventStore + Snapshotter>(builder: RuntimeBuilder<S>) -> RuntimeBuilder<S> {
    register_actors(builder)
        .policy::<Invoice, Customer, _>("customer-lines", customer_commands)
        .policy::<Invoice, Product, _>("product-sales", product_commands)
}

/// Registers the retail actors without policies, for reading states back.
pub fn register_actors<S: EventStore + Snapshotter>(
    builder: RuntimeBuilder<S>,
) -> RuntimeBuilder<S> {
    // The job is the only writer of its store, so following the store for other writers'
    // events would only read back every event this runtime stores.
    builder
        .follow_store(false)
        .idempotency_window(IDEMPOTENCY_WINDOW)
        .register_with_snapshots::<Invoice>(Some(INVOICE_SNAPSHOT_EVERY))
        .register_with_snapshots::<Customer>(Some(TOTALS_SNAPSHOT_EVERY))
        .register_with_snapshots::<Product>(Some(TOTALS_SNAPSHOT_EVERY))
}

/// Maps an accepted line to its customer command, or to none when the line has no customer.
pub fn customer_commands(
    invoice: &ActorId,
    event: &InvoiceEvent,
) -> Vec<(String, CustomerCommand)> {
    let InvoiceEvent::LineAdded(added) = event;
    let Some(customer) = added.customer else {
        return Vec::new();
    };
    let line = CustomerLine {
        invoice: invoice.as_str().to_owned(),
        line: added.line,
        amount: added.amount,
    };
    let command = match added.kind {
        InvoiceKind::Sale => CustomerCommand::RecordPurchase(line),
        InvoiceKind::Cancellation => CustomerCommand::RecordReturn(line),
        InvoiceKind::Adjustment => CustomerCommand::RecordAdjustment(line),
    };
    vec![(customer.to_string(), command)]
}

/// Maps an accepted line to a sale for the product of its stock code.
pub fn product_commands(invoice: &ActorId, event: &InvoiceEvent) -> Vec<(String, ProductCommand)> {
    let InvoiceEvent::LineAdded(added) = event;
    let sale = Sale {
        invoice: invoice.as_str().to_owned(),
        line: added.line,
        quantity: added.quantity,
        amount: added.amount,
    };
    vec![(added.stock_code.clone(), ProductCommand::RecordSale(sale))]
}
