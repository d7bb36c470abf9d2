//! The `customer` actor: one per customer number, fed by the invoice policy.
//!
//! Every accepted invoice line that has a customer becomes one command here: a purchase for a
//! sale invoice, a return for a cancellation and an adjustment for an `A…` invoice. The state
//! keeps sums, a line count and the set of distinct invoice numbers. The largest customer of the
//! shipped data has 248 invoices, so the set stays a few kilobytes.

use std::collections::BTreeSet;

use aether::Actor;
use serde::{Deserialize, Serialize};

use super::money::Money;

/// The customer actor. Its id is the customer number, such as `17850`.
pub struct Customer;

/// A command to a customer, sent by the `customer-lines` policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerCommand {
    /// Records an accepted line of a sale invoice.
    RecordPurchase(CustomerLine),
    /// Records an accepted line of a cancellation invoice, whose amount is zero or negative.
    RecordReturn(CustomerLine),
    /// Records an accepted line of an adjustment invoice.
    RecordAdjustment(CustomerLine),
}

/// An event of a customer. Each command stores exactly one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerEvent {
    /// A purchase line was recorded.
    PurchaseRecorded(CustomerLine),
    /// A return line was recorded.
    ReturnRecorded(CustomerLine),
    /// An adjustment line was recorded.
    AdjustmentRecorded(CustomerLine),
}

/// The part of an invoice line that a customer records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerLine {
    /// The invoice number.
    pub invoice: String,
    /// The line number in the CSV.
    pub line: u64,
    /// The line's signed amount.
    pub amount: Money,
}

/// The totals of one customer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerState {
    /// The sum of the amounts of purchase lines.
    pub purchases: Money,
    /// The sum of the amounts of return lines, zero or negative.
    pub returns: Money,
    /// The sum of the amounts of adjustment lines.
    pub adjustments: Money,
    /// The number of lines recorded.
    pub lines: u64,
    /// The distinct invoice numbers of the recorded lines.
    pub invoices: BTreeSet<String>,
}

/// A line the customer could not add because a sum would leave the `i64` range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("line {line} of invoice {invoice}: the customer's total is out of range")]
pub struct CustomerOverflow {
    /// The invoice number.
    pub invoice: String,
    /// The line number.
    pub line: u64,
}

impl Actor for Customer {
    const KIND: &'static str = "customer";
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type State = CustomerState;
    type Reply = ();
    type Error = CustomerOverflow;

    fn handle(
        state: &CustomerState,
        command: &CustomerCommand,
    ) -> Result<(Vec<CustomerEvent>, ()), CustomerOverflow> {
        let (line, sum) = match command {
            CustomerCommand::RecordPurchase(line) => (line, state.purchases),
            CustomerCommand::RecordReturn(line) => (line, state.returns),
            CustomerCommand::RecordAdjustment(line) => (line, state.adjustments),
        };
        if sum.checked_add(line.amount).is_none() {
            return Err(CustomerOverflow {
                invoice: line.invoice.clone(),
                line: line.line,
            });
        }

        let event = match command {
            CustomerCommand::RecordPurchase(line) => CustomerEvent::PurchaseRecorded(line.clone()),
            CustomerCommand::RecordReturn(line) => CustomerEvent::ReturnRecorded(line.clone()),
            CustomerCommand::RecordAdjustment(line) => {
                CustomerEvent::AdjustmentRecorded(line.clone())
            }
        };
        Ok((vec![event], ()))
    }

    fn apply(state: &mut CustomerState, event: &CustomerEvent) {
        let (line, sum) = match event {
            CustomerEvent::PurchaseRecorded(line) => (line, &mut state.purchases),
            CustomerEvent::ReturnRecorded(line) => (line, &mut state.returns),
            CustomerEvent::AdjustmentRecorded(line) => (line, &mut state.adjustments),
        };
        // `handle` checked the sum, so the fallback is never taken for a decided event.
        *sum = sum.checked_add(line.amount).unwrap_or(*sum);
        state.lines += 1;
        if !state.invoices.contains(&line.invoice) {
            state.invoices.insert(line.invoice.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(invoice: &str, amount: i64) -> CustomerLine {
        CustomerLine {
            invoice: invoice.to_owned(),
            line: 2,
            amount: Money::from_thousandths(amount),
        }
    }

    fn run(commands: Vec<CustomerCommand>) -> CustomerState {
        let mut state = CustomerState::default();
        for command in commands {
            let (events, ()) = Customer::handle(&state, &command).unwrap();
            for event in &events {
                Customer::apply(&mut state, event);
            }
        }
        state
    }

    #[test]
    fn sums_by_invoice_kind() {
        let state = run(vec![
            CustomerCommand::RecordPurchase(line("536365", 15_300)),
            CustomerCommand::RecordPurchase(line("536365", 20_340)),
            CustomerCommand::RecordReturn(line("C536379", -2_550)),
            CustomerCommand::RecordAdjustment(line("A1", 5_000)),
        ]);
        assert_eq!(state.purchases, Money::from_thousandths(35_640));
        assert_eq!(state.returns, Money::from_thousandths(-2_550));
        assert_eq!(state.adjustments, Money::from_thousandths(5_000));
        assert_eq!(state.lines, 4);
        assert_eq!(state.invoices.len(), 3);
    }

    #[test]
    fn overflow_is_rejected() {
        let state = CustomerState {
            purchases: Money::from_thousandths(i64::MAX),
            ..CustomerState::default()
        };
        let command = CustomerCommand::RecordPurchase(line("1", 1));
        let error = Customer::handle(&state, &command).unwrap_err();
        assert_eq!(error.line, 2);
        let returns = CustomerCommand::RecordReturn(line("1", -1));
        assert!(Customer::handle(&state, &returns).is_ok());
    }
}
