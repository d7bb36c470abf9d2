//! The `product` actor: one per stock code, fed by the invoice policy.
//!
//! Every accepted invoice line becomes one sale here, whatever the invoice's kind, so a
//! cancellation line is a sale with a negative quantity and amount.

use aether::Actor;
use serde::{Deserialize, Serialize};

use super::money::Money;

/// The product actor. Its id is the stock code, such as `85123A`.
pub struct Product;

/// A command to a product, sent by the `product-sales` policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductCommand {
    /// Records an accepted invoice line of this stock code.
    RecordSale(Sale),
}

/// An event of a product. Each command stores exactly one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductEvent {
    /// A sale was recorded.
    SaleRecorded(Sale),
}

/// The part of an accepted invoice line that a product records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sale {
    /// The invoice number.
    pub invoice: String,
    /// The line number in the CSV.
    pub line: u64,
    /// The signed quantity.
    pub quantity: i64,
    /// The signed amount.
    pub amount: Money,
}

/// The totals of one stock code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductState {
    /// The number of lines recorded.
    pub lines: u64,
    /// The sum of the quantities.
    pub quantity: i64,
    /// The sum of the amounts.
    pub amount: Money,
}

/// A sale the product could not add because a total would leave the `i64` range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("line {line} of invoice {invoice}: the product's total is out of range")]
pub struct ProductOverflow {
    /// The invoice number.
    pub invoice: String,
    /// The line number.
    pub line: u64,
}

impl Actor for Product {
    const KIND: &'static str = "product";
    type Command = ProductCommand;
    type Event = ProductEvent;
    type State = ProductState;
    type Reply = ();
    type Error = ProductOverflow;

    fn handle(
        state: &ProductState,
        command: &ProductCommand,
    ) -> Result<(Vec<ProductEvent>, ()), ProductOverflow> {
        let ProductCommand::RecordSale(sale) = command;
        let fits = state.amount.checked_add(sale.amount).is_some()
            && state.quantity.checked_add(sale.quantity).is_some();
        if !fits {
            return Err(ProductOverflow {
                invoice: sale.invoice.clone(),
                line: sale.line,
            });
        }
        Ok((vec![ProductEvent::SaleRecorded(sale.clone())], ()))
    }

    fn apply(state: &mut ProductState, event: &ProductEvent) {
        let ProductEvent::SaleRecorded(sale) = event;
        state.lines += 1;
        // `handle` checked both sums, so neither fallback is taken for a decided event.
        state.quantity = state.quantity.saturating_add(sale.quantity);
        state.amount = state
            .amount
            .checked_add(sale.amount)
            .unwrap_or(state.amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(quantity: i64, amount: i64) -> ProductCommand {
        ProductCommand::RecordSale(Sale {
            invoice: "536365".to_owned(),
            line: 2,
            quantity,
            amount: Money::from_thousandths(amount),
        })
    }

    #[test]
    fn sales_and_returns_add_up() {
        let mut state = ProductState::default();
        for command in [sale(6, 15_300), sale(-1, -2_550)] {
            let (events, ()) = Product::handle(&state, &command).unwrap();
            Product::apply(&mut state, &events[0]);
        }
        assert_eq!(state.lines, 2);
        assert_eq!(state.quantity, 5);
        assert_eq!(state.amount, Money::from_thousandths(12_750));
    }

    #[test]
    fn overflow_is_rejected() {
        let state = ProductState {
            quantity: i64::MAX,
            ..ProductState::default()
        };
        assert!(Product::handle(&state, &sale(1, 0)).is_err());
    }
}
