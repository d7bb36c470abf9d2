//! Verification: a new runtime reads every invoice, customer and product back from the store and
//! compares it with the totals computed straight from the CSV by [`Expected`].

use std::fmt::Display;
use std::time::{Duration, Instant};

use aether::{Actor, EventStore, Runtime, Snapshotter};
use futures::StreamExt;
use indicatif::ProgressBar;

use super::customer::{Customer, CustomerState};
use super::expected::{CustomerTotals, Expected, InvoiceTotals, ProductTotals, Rejection};
use super::invoice::{Invoice, InvoiceState, RejectReason};
use super::job::IngestReport;
use super::policies;
use super::product::{Product, ProductState};
use super::progress::Progress;
use super::report::EXAMPLES;
use super::run::JobError;

/// State reads in flight at once.
const READS_IN_FLIGHT: usize = 64;

/// The outcome of the verification.
#[derive(Clone, Debug, Default)]
pub struct Verification {
    /// The differences between the job's line counts and the expected ones, empty when all match.
    pub count_mismatches: Vec<String>,
    /// The comparison per actor kind.
    pub kinds: Vec<KindCheck>,
    /// Time to read every actor back.
    pub elapsed: Duration,
}

/// The comparison of one actor kind.
#[derive(Clone, Debug, Default)]
pub struct KindCheck {
    /// The actor kind.
    pub kind: &'static str,
    /// Actors read back.
    pub checked: u64,
    /// Actors whose state matched the expected totals.
    pub matched: u64,
    /// Details of the first mismatches, in id order.
    pub mismatches: Vec<String>,
    /// Events in the store for these actors: the sum of their versions.
    pub stored_events: u64,
}

impl Verification {
    /// Returns whether every count and every actor matched.
    pub fn is_success(&self) -> bool {
        self.count_mismatches.is_empty() && self.kinds.iter().all(|k| k.matched == k.checked)
    }
}

/// Starts a runtime without policies on `store`, activates every actor that `expected` has an
/// entry for, compares its state and shuts the runtime down. Also compares the ingest's line
/// counts with the expected ones.
///
/// # Errors
///
/// [`JobError::Build`] when the runtime cannot be built. An actor that cannot be read counts as
/// a mismatch.
pub async fn verify<S: EventStore + Snapshotter>(
    store: S,
    expected: &Expected,
    ingest: &IngestReport,
    progress: &Progress,
) -> Result<Verification, JobError> {
    let started = Instant::now();
    let mut verification = Verification {
        count_mismatches: compare_counts(ingest, expected),
        ..Verification::default()
    };
    let runtime = policies::register_actors(Runtime::builder(store))
        .snapshot_on_stop(false)
        .build()?;
    let actors = expected.invoices.len() + expected.customers.len() + expected.products.len();
    let bar = progress.bar(actors as u64, "actors");

    let invoices = expected.invoices.iter().map(|(id, t)| (id.clone(), t));
    let check = check_kind::<Invoice, _, _>(&runtime, invoices, compare_invoice, &bar).await;
    verification.kinds.push(check);
    let customers = expected.customers.iter().map(|(id, t)| (id.to_string(), t));
    let check = check_kind::<Customer, _, _>(&runtime, customers, compare_customer, &bar).await;
    verification.kinds.push(check);
    let products = expected.products.iter().map(|(id, t)| (id.clone(), t));
    let check = check_kind::<Product, _, _>(&runtime, products, compare_product, &bar).await;
    verification.kinds.push(check);

    bar.finish_and_clear();
    runtime.shutdown().await;
    verification.elapsed = started.elapsed();
    Ok(verification)
}

/// Reads every actor of kind `A` in `expected` and compares it with `compare`.
async fn check_kind<'a, A, S, T>(
    runtime: &Runtime<S>,
    expected: impl Iterator<Item = (String, &'a T)>,
    compare: fn(&A::State, &T) -> Vec<String>,
    bar: &ProgressBar,
) -> KindCheck
where
    A: Actor,
    S: EventStore + Snapshotter,
    T: 'a,
{
    let mut check = KindCheck {
        kind: A::KIND,
        ..KindCheck::default()
    };
    let mut mismatches = Vec::new();
    let mut reads = futures::stream::iter(expected)
        .map(|(id, totals)| async move {
            let read = runtime.state::<A>(id.as_str()).await;
            (id, totals, read)
        })
        .buffer_unordered(READS_IN_FLIGHT);

    while let Some((id, totals, read)) = reads.next().await {
        check.checked += 1;
        bar.inc(1);
        let differences = match read {
            Ok((state, version)) => {
                check.stored_events += version.get();
                compare(&state, totals)
            }
            Err(error) => vec![format!("could not be read: {error}")],
        };
        if differences.is_empty() {
            check.matched += 1;
        } else {
            mismatches.push((id, differences.join(", ")));
        }
    }

    mismatches.sort();
    check.mismatches = mismatches
        .into_iter()
        .take(EXAMPLES)
        .map(|(id, differences)| format!("{} {id:?}: {differences}", A::KIND))
        .collect();
    check
}

fn compare_invoice(state: &InvoiceState, expected: &InvoiceTotals) -> Vec<String> {
    let header = expected.header.as_ref();
    let mut found = Differences::default();
    found.check(
        "kind",
        show(state.kind),
        show(header.map(|_| expected.kind)),
    );
    let customer = header.and_then(|h| h.customer_id);
    found.check("customer", show(state.customer), show(customer));
    let country = header.map(|h| h.country.as_str());
    found.check("country", show(state.country.as_deref()), show(country));
    found.check("lines", state.lines, expected.accepted_lines);
    found.check("quantity", state.quantity, expected.quantity);
    found.check("amount", state.amount, expected.amount);
    found.0
}

fn compare_customer(state: &CustomerState, expected: &CustomerTotals) -> Vec<String> {
    let mut found = Differences::default();
    found.check("purchases", state.purchases, expected.purchases);
    found.check("returns", state.returns, expected.returns);
    found.check("adjustments", state.adjustments, expected.adjustments);
    found.check("lines", state.lines, expected.accepted_lines);
    found.check("invoices", state.invoices.len() as u64, expected.invoices);
    found.0
}

fn compare_product(state: &ProductState, expected: &ProductTotals) -> Vec<String> {
    let mut found = Differences::default();
    found.check("lines", state.lines, expected.accepted_lines);
    found.check("quantity", state.quantity, expected.quantity);
    found.check("amount", state.amount, expected.amount);
    found.0
}

/// Compares the ingest's line counts with the expected ones.
fn compare_counts(ingest: &IngestReport, expected: &Expected) -> Vec<String> {
    let overall = &expected.overall;
    let mut found = Differences::default();
    found.check("lines read", ingest.lines_read, overall.lines_read);
    found.check("malformed lines", ingest.malformed, overall.malformed);
    found.check("accepted lines", ingest.accepted, overall.accepted);
    for reason in RejectReason::ALL {
        let actual = ingest.rejected.get(&reason).copied().unwrap_or(0);
        let wanted = expected_rejection(reason).map_or(0, |rule| overall.rejected.get(rule));
        found.check(&format!("lines rejected for {reason}"), actual, wanted);
    }
    found.0
}

/// Maps an invoice's reject reason to the rule of [`Expected`]. Overflow maps to none, because
/// [`Expected`] reports an overflowing total as an error instead.
fn expected_rejection(reason: RejectReason) -> Option<Rejection> {
    match reason {
        RejectReason::NegativePrice => Some(Rejection::NegativePrice),
        RejectReason::ZeroQuantity => Some(Rejection::ZeroQuantity),
        RejectReason::PositiveQuantityOnCancellation => {
            Some(Rejection::PositiveQuantityOnCancellation)
        }
        RejectReason::CustomerMismatch => Some(Rejection::CustomerMismatch),
        RejectReason::CountryMismatch => Some(Rejection::CountryMismatch),
        RejectReason::Overflow => None,
    }
}

/// The differences found in one comparison, as `name actual, expected value` texts.
#[derive(Default)]
struct Differences(Vec<String>);

impl Differences {
    fn check<T: PartialEq + Display>(&mut self, name: &str, actual: T, expected: T) {
        if actual != expected {
            self.0.push(format!("{name} {actual}, expected {expected}"));
        }
    }
}

fn show<T: std::fmt::Debug>(value: Option<T>) -> String {
    match value {
        Some(value) => format!("{value:?}"),
        None => "none".to_owned(),
    }
}
