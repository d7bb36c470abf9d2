//! The `invoice` actor: one per invoice number, fed one command per CSV line.
//!
//! The invoice decides whether a shop would take each line. A line is rejected when its unit
//! price is negative, its quantity is zero, it has a positive quantity on a cancellation (`C…`)
//! invoice, or its customer or country differs from the invoice's first accepted line. The checks
//! run in that order and the first that fails gives the reason. An accepted line becomes a
//! [`InvoiceEvent::LineAdded`] event, which the policies turn into customer and product commands.

use std::fmt;

use aether::Actor;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::line::{InvoiceKind, InvoiceLine};
use super::money::Money;

/// The invoice actor. Its id is the invoice number, such as `536365` or `C536379`.
pub struct Invoice;

/// A command to an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceCommand {
    /// Adds one CSV line to the invoice.
    AddLine(AddLine),
}

/// One CSV line as a command. The job sends it with the command id `line-<line>`, so sending it
/// again stores nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddLine {
    /// The line number in the CSV, counting the header as line 1.
    pub line: u64,
    /// The invoice number, which is also the actor id. Its prefix gives the [`InvoiceKind`].
    pub invoice: String,
    /// The stock code.
    pub stock_code: String,
    /// The product description, possibly empty.
    pub description: String,
    /// The quantity, negative on cancellations.
    pub quantity: i64,
    /// The price of one unit.
    pub unit_price: Money,
    /// The customer number, if the line has one.
    pub customer: Option<u32>,
    /// The customer's country.
    pub country: String,
    /// The invoice date and time, UK local time.
    pub date: NaiveDateTime,
}

/// An event of an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceEvent {
    /// A line was accepted.
    LineAdded(LineAdded),
}

/// An accepted line, with its amount and the invoice's kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineAdded {
    /// The line number in the CSV.
    pub line: u64,
    /// The invoice's kind.
    pub kind: InvoiceKind,
    /// The stock code.
    pub stock_code: String,
    /// The product description.
    pub description: String,
    /// The quantity.
    pub quantity: i64,
    /// The price of one unit.
    pub unit_price: Money,
    /// `quantity × unit_price`.
    pub amount: Money,
    /// The customer number, if any.
    pub customer: Option<u32>,
    /// The country.
    pub country: String,
    /// The invoice date and time.
    pub date: NaiveDateTime,
}

/// The state of an invoice: its header, fixed by the first accepted line, and its totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceState {
    /// The kind, or `None` before the first accepted line.
    pub kind: Option<InvoiceKind>,
    /// The customer of the first accepted line (`None` also when that line had no customer).
    pub customer: Option<u32>,
    /// The country of the first accepted line, or `None` before it.
    pub country: Option<String>,
    /// The number of accepted lines.
    pub lines: u64,
    /// The sum of the accepted lines' amounts.
    pub amount: Money,
    /// The sum of the accepted lines' quantities.
    pub quantity: i64,
}

/// The reason an invoice rejected a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RejectReason {
    /// The unit price is below zero.
    NegativePrice,
    /// The quantity is zero.
    ZeroQuantity,
    /// A cancellation line has a quantity above zero.
    PositiveQuantityOnCancellation,
    /// The customer differs from the invoice's customer.
    CustomerMismatch,
    /// The country differs from the invoice's country.
    CountryMismatch,
    /// The line's amount, or the invoice's total amount or quantity with it, does not fit in an
    /// `i64`. No line of the shipped data comes near.
    Overflow,
}

/// A line the invoice rejected. Nothing is stored for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("line {line} rejected: {reason}")]
pub struct LineRejected {
    /// The line number.
    pub line: u64,
    /// The reason.
    pub reason: RejectReason,
}

impl Actor for Invoice {
    const KIND: &'static str = "invoice";
    type Command = InvoiceCommand;
    type Event = InvoiceEvent;
    type State = InvoiceState;
    type Reply = ();
    type Error = LineRejected;

    fn handle(
        state: &InvoiceState,
        command: &InvoiceCommand,
    ) -> Result<(Vec<InvoiceEvent>, ()), LineRejected> {
        let InvoiceCommand::AddLine(line) = command;
        let kind = InvoiceKind::of(&line.invoice);
        let reject = |reason| LineRejected {
            line: line.line,
            reason,
        };

        if let Some(reason) = shop_rule_violation(state, kind, line) {
            return Err(reject(reason));
        }
        let amount = line
            .unit_price
            .checked_mul(line.quantity)
            .ok_or(reject(RejectReason::Overflow))?;
        let fits = state.amount.checked_add(amount).is_some()
            && state.quantity.checked_add(line.quantity).is_some();
        if !fits {
            return Err(reject(RejectReason::Overflow));
        }

        let event = LineAdded {
            line: line.line,
            kind,
            stock_code: line.stock_code.clone(),
            description: line.description.clone(),
            quantity: line.quantity,
            unit_price: line.unit_price,
            amount,
            customer: line.customer,
            country: line.country.clone(),
            date: line.date,
        };
        Ok((vec![InvoiceEvent::LineAdded(event)], ()))
    }

    fn apply(state: &mut InvoiceState, event: &InvoiceEvent) {
        let InvoiceEvent::LineAdded(line) = event;
        if state.lines == 0 {
            state.kind = Some(line.kind);
            state.customer = line.customer;
            state.country = Some(line.country.clone());
        }
        state.lines += 1;
        // `handle` checked both sums, so neither fallback is taken for a decided event.
        state.amount = state
            .amount
            .checked_add(line.amount)
            .unwrap_or(state.amount);
        state.quantity = state.quantity.saturating_add(line.quantity);
    }
}

/// Returns the first shop rule that `line` breaks, given the invoice so far.
fn shop_rule_violation(
    state: &InvoiceState,
    kind: InvoiceKind,
    line: &AddLine,
) -> Option<RejectReason> {
    if line.unit_price.is_negative() {
        Some(RejectReason::NegativePrice)
    } else if line.quantity == 0 {
        Some(RejectReason::ZeroQuantity)
    } else if kind == InvoiceKind::Cancellation && line.quantity > 0 {
        Some(RejectReason::PositiveQuantityOnCancellation)
    } else if state.lines > 0 && state.customer != line.customer {
        Some(RejectReason::CustomerMismatch)
    } else if state.lines > 0 && state.country.as_deref() != Some(line.country.as_str()) {
        Some(RejectReason::CountryMismatch)
    } else {
        None
    }
}

impl From<InvoiceLine> for AddLine {
    fn from(line: InvoiceLine) -> Self {
        AddLine {
            line: line.line,
            invoice: line.invoice_no,
            stock_code: line.stock_code,
            description: line.description,
            quantity: line.quantity,
            unit_price: line.unit_price,
            customer: line.customer_id,
            country: line.country,
            date: line.invoice_date,
        }
    }
}

impl RejectReason {
    /// Every reason, in the order the checks run, with `Overflow` last.
    pub const ALL: [RejectReason; 6] = [
        RejectReason::NegativePrice,
        RejectReason::ZeroQuantity,
        RejectReason::PositiveQuantityOnCancellation,
        RejectReason::CustomerMismatch,
        RejectReason::CountryMismatch,
        RejectReason::Overflow,
    ];
}

impl fmt::Display for RejectReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            RejectReason::NegativePrice => "negative unit price",
            RejectReason::ZeroQuantity => "zero quantity",
            RejectReason::PositiveQuantityOnCancellation => "positive quantity on a cancellation",
            RejectReason::CustomerMismatch => "customer differs from the invoice's",
            RejectReason::CountryMismatch => "country differs from the invoice's",
            RejectReason::Overflow => "amount or quantity out of range",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_line(invoice: &str, quantity: i64, price: &str, customer: Option<u32>) -> AddLine {
        AddLine {
            line: 2,
            invoice: invoice.to_owned(),
            stock_code: "85123A".to_owned(),
            description: "WHITE HANGING HEART T-LIGHT HOLDER".to_owned(),
            quantity,
            unit_price: price.parse().unwrap(),
            customer,
            country: "United Kingdom".to_owned(),
            date: NaiveDateTime::parse_from_str(
                "2010-12-01 08:26:00",
                super::super::line::DATE_FORMAT,
            )
            .unwrap(),
        }
    }

    fn decide(state: &InvoiceState, line: AddLine) -> Result<InvoiceEvent, RejectReason> {
        Invoice::handle(state, &InvoiceCommand::AddLine(line))
            .map(|(mut events, ())| events.remove(0))
            .map_err(|rejected| rejected.reason)
    }

    fn accepted(lines: &[AddLine]) -> InvoiceState {
        let mut state = InvoiceState::default();
        for line in lines {
            let event = decide(&state, line.clone()).unwrap();
            Invoice::apply(&mut state, &event);
        }
        state
    }

    #[test]
    fn first_line_sets_header() {
        let state = accepted(&[
            add_line("536365", 6, "2.55", Some(17850)),
            add_line("536365", 2, "3.39", Some(17850)),
        ]);
        assert_eq!(state.kind, Some(InvoiceKind::Sale));
        assert_eq!(state.customer, Some(17850));
        assert_eq!(state.country.as_deref(), Some("United Kingdom"));
        assert_eq!(state.lines, 2);
        assert_eq!(state.quantity, 8);
        assert_eq!(state.amount, "22.08".parse().unwrap());
    }

    #[test]
    fn stateless_rules_in_order() {
        let empty = InvoiceState::default();
        let cases = [
            (
                add_line("A1", 0, "-1.00", None),
                RejectReason::NegativePrice,
            ),
            (add_line("1", 0, "1.00", None), RejectReason::ZeroQuantity),
            (
                add_line("C1", 2, "1.00", None),
                RejectReason::PositiveQuantityOnCancellation,
            ),
        ];
        for (line, reason) in cases {
            assert_eq!(decide(&empty, line.clone()), Err(reason), "{line:?}");
        }
        assert!(decide(&empty, add_line("C1", -2, "1.00", None)).is_ok());
    }

    #[test]
    fn header_rules_after_first_line() {
        let state = accepted(&[add_line("C3", -2, "1.00", Some(12346))]);
        let other_customer = add_line("C3", -2, "1.00", Some(12347));
        let no_customer = add_line("C3", -2, "1.00", None);
        let mut other_country = add_line("C3", -2, "1.00", Some(12346));
        other_country.country = "France".to_owned();
        let mut both = add_line("C3", -2, "1.00", Some(12347));
        both.country = "France".to_owned();

        assert_eq!(
            decide(&state, other_customer),
            Err(RejectReason::CustomerMismatch)
        );
        assert_eq!(
            decide(&state, no_customer),
            Err(RejectReason::CustomerMismatch)
        );
        assert_eq!(
            decide(&state, other_country),
            Err(RejectReason::CountryMismatch)
        );
        assert_eq!(decide(&state, both), Err(RejectReason::CustomerMismatch));
    }

    #[test]
    fn rejected_line_leaves_header_open() {
        let zero = add_line("10", 0, "1.00", Some(12346));
        assert_eq!(
            decide(&InvoiceState::default(), zero),
            Err(RejectReason::ZeroQuantity)
        );
        let state = accepted(&[add_line("10", 1, "1.00", None)]);
        assert_eq!(state.customer, None);
        assert_eq!(
            decide(&state, add_line("10", 1, "1.00", Some(12346))),
            Err(RejectReason::CustomerMismatch)
        );
    }

    #[test]
    fn overflow_is_rejected() {
        let huge = add_line("1", i64::MAX, "2.00", None);
        assert_eq!(
            decide(&InvoiceState::default(), huge),
            Err(RejectReason::Overflow)
        );
        let state = InvoiceState {
            lines: 1,
            amount: Money::from_thousandths(i64::MAX),
            country: Some("United Kingdom".to_owned()),
            ..InvoiceState::default()
        };
        assert_eq!(
            decide(&state, add_line("1", 1, "1.00", None)),
            Err(RejectReason::Overflow)
        );
    }

    #[test]
    fn rejection_names_line() {
        let mut line = add_line("1", 0, "1.00", None);
        line.line = 77;
        let rejected =
            Invoice::handle(&InvoiceState::default(), &InvoiceCommand::AddLine(line)).unwrap_err();
        assert_eq!(rejected.to_string(), "line 77 rejected: zero quantity");
    }
}
