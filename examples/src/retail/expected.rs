//! Expected totals of the retail job, computed straight from the CSV without actors.
//!
//! A well-formed line is accepted unless one of these rules rejects it, checked in this order,
//! the first that fires giving the reason:
//!
//! 1. [`Rejection::NegativePrice`]: the unit price is below zero.
//! 2. [`Rejection::ZeroQuantity`]: the quantity is zero.
//! 3. [`Rejection::PositiveQuantityOnCancellation`]: a `C` invoice has a quantity above zero.
//! 4. [`Rejection::CustomerMismatch`]: the customer, or the absence of one, differs from that of
//!    the first accepted line of the same invoice.
//! 5. [`Rejection::CountryMismatch`]: likewise for the country.
//!
//! Rejected lines add to no total and do not set an invoice's customer or country. Every map
//! still has an entry for each invoice, customer and stock code seen on a well-formed line, so an
//! entry can have zero accepted lines.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::line::{InvoiceKind, InvoiceLine};
use super::money::Money;
use super::source::{LineReader, LineResult, ReadError};

/// Totals expected after replaying every line, keyed by invoice number, customer and stock code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// Counts over the whole input.
    pub overall: Overall,
    /// Totals per invoice number.
    pub invoices: BTreeMap<String, InvoiceTotals>,
    /// Totals per customer number, from lines that have a customer.
    pub customers: BTreeMap<u32, CustomerTotals>,
    /// Totals per stock code.
    pub products: BTreeMap<String, ProductTotals>,
}

/// Counts and sums over the whole input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overall {
    /// Data lines read, malformed ones included.
    pub lines_read: u64,
    /// Lines that could not be parsed.
    pub malformed: u64,
    /// Well-formed lines that no rule rejected.
    pub accepted: u64,
    /// Well-formed lines rejected, by reason.
    pub rejected: RejectionCounts,
    /// Distinct invoice numbers on well-formed lines.
    pub invoices: u64,
    /// Distinct customers on well-formed lines.
    pub customers: u64,
    /// Distinct stock codes on well-formed lines.
    pub products: u64,
    /// Sum of quantity × unit price over all well-formed lines, rejected ones included.
    pub gross_amount: Money,
    /// Sum of quantity × unit price over accepted lines.
    pub accepted_amount: Money,
}

/// The reason a well-formed line is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rejection {
    /// The unit price is below zero.
    NegativePrice,
    /// The quantity is zero.
    ZeroQuantity,
    /// A cancellation invoice has a quantity above zero.
    PositiveQuantityOnCancellation,
    /// The customer differs from that of the invoice's first accepted line.
    CustomerMismatch,
    /// The country differs from that of the invoice's first accepted line.
    CountryMismatch,
}

/// Number of rejected lines for each [`Rejection`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionCounts {
    /// Lines rejected as [`Rejection::NegativePrice`].
    pub negative_price: u64,
    /// Lines rejected as [`Rejection::ZeroQuantity`].
    pub zero_quantity: u64,
    /// Lines rejected as [`Rejection::PositiveQuantityOnCancellation`].
    pub positive_quantity_on_cancellation: u64,
    /// Lines rejected as [`Rejection::CustomerMismatch`].
    pub customer_mismatch: u64,
    /// Lines rejected as [`Rejection::CountryMismatch`].
    pub country_mismatch: u64,
}

/// Customer and country of an invoice, fixed by its first accepted line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceHeader {
    /// The customer number, or `None` for an invoice without a customer.
    pub customer_id: Option<u32>,
    /// The country.
    pub country: String,
}

/// Totals of one invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceTotals {
    /// The kind given by the invoice number's prefix.
    pub kind: InvoiceKind,
    /// Customer and country of the first accepted line, or `None` while no line is accepted.
    pub header: Option<InvoiceHeader>,
    /// Number of accepted lines.
    pub accepted_lines: u64,
    /// Number of rejected lines.
    pub rejected_lines: u64,
    /// Sum of the quantities of accepted lines.
    pub quantity: i64,
    /// Sum of the signed amounts of accepted lines.
    pub amount: Money,
}

/// Totals of one customer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerTotals {
    /// Sum of the amounts of accepted lines on sale invoices.
    pub purchases: Money,
    /// Sum of the amounts of accepted lines on cancellation invoices, zero or negative because
    /// cancellation lines with a positive quantity are rejected (a negative unit price is too).
    pub returns: Money,
    /// Sum of the amounts of accepted lines on adjustment invoices. It is zero on the shipped
    /// data, whose adjustments have no customer.
    pub adjustments: Money,
    /// Number of accepted lines.
    pub accepted_lines: u64,
    /// Number of distinct invoices with at least one accepted line for this customer.
    pub invoices: u64,
}

/// Totals of one stock code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductTotals {
    /// Number of accepted lines.
    pub accepted_lines: u64,
    /// Sum of the quantities of accepted lines.
    pub quantity: i64,
    /// Sum of the signed amounts of accepted lines.
    pub amount: Money,
}

/// Result of [`Expected::record`] for one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineOutcome {
    /// The line was accepted and added to the totals.
    Accepted,
    /// The line was rejected for this reason.
    Rejected(Rejection),
    /// The line was malformed.
    Malformed,
}

/// A total that no longer fits in an `i64`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("line {line}: the {total} overflows an i64")]
pub struct TotalOverflow {
    /// The line whose value made the total overflow.
    pub line: u64,
    /// Name of the total that overflowed, such as `amount of invoice 536365`.
    pub total: String,
}

/// A failure to compute the expected totals of a file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExpectedError {
    /// The input could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A total overflowed.
    #[error(transparent)]
    Overflow(#[from] TotalOverflow),
}

impl Expected {
    /// Computes the totals of a CSV file, gzip-compressed or plain.
    ///
    /// # Errors
    ///
    /// Returns [`ExpectedError::Read`] when the file cannot be read to its end, and
    /// [`ExpectedError::Overflow`] when a total overflows. Malformed lines are counted, not
    /// returned as errors.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ExpectedError> {
        Self::from_file_prefix(path, None)
    }

    /// Computes the totals of the first `limit` data lines of a CSV file, gzip-compressed or
    /// plain, or of every line when `limit` is `None`. Malformed lines count towards the limit, as they do
    /// for the retail job's `--limit`.
    ///
    /// # Errors
    ///
    /// As [`Expected::from_file`], for the lines within the limit.
    pub fn from_file_prefix(
        path: impl AsRef<Path>,
        limit: Option<u64>,
    ) -> Result<Self, ExpectedError> {
        let mut expected = Expected::default();
        let mut reader = LineReader::open(path)?;
        let mut remaining = limit.unwrap_or(u64::MAX);
        while remaining > 0 {
            let Some(line) = reader.next() else {
                break;
            };
            expected.record(&line?)?;
            remaining -= 1;
        }
        Ok(expected)
    }

    /// Computes the totals of parsed lines, in order.
    ///
    /// # Errors
    ///
    /// Returns [`TotalOverflow`] when a total overflows.
    pub fn from_lines(lines: impl IntoIterator<Item = LineResult>) -> Result<Self, TotalOverflow> {
        let mut expected = Expected::default();
        for line in lines {
            expected.record(&line)?;
        }
        Ok(expected)
    }

    /// Adds one line to the totals and returns whether it was accepted.
    ///
    /// Lines must be recorded in file order, because the first accepted line of an invoice fixes
    /// its customer and country.
    ///
    /// # Errors
    ///
    /// Returns [`TotalOverflow`] when a total overflows. The totals are then partly updated.
    pub fn record(&mut self, line: &LineResult) -> Result<LineOutcome, TotalOverflow> {
        self.overall.lines_read += 1;
        let line = match line {
            Ok(line) => line,
            Err(_) => {
                self.overall.malformed += 1;
                return Ok(LineOutcome::Malformed);
            }
        };

        // Every well-formed line counts towards the gross amount and creates map entries, so
        // the distinct counts match the data set's published facts whatever the rules reject.
        self.overall.gross_amount = add_money(self.overall.gross_amount, line, || {
            "gross amount".to_owned()
        })?;
        let kind = line.kind();
        if !self.invoices.contains_key(&line.invoice_no) {
            self.invoices
                .insert(line.invoice_no.clone(), InvoiceTotals::new(kind));
        }
        if let Some(customer_id) = line.customer_id {
            self.customers.entry(customer_id).or_default();
        }
        if !self.products.contains_key(&line.stock_code) {
            self.products
                .insert(line.stock_code.clone(), ProductTotals::default());
        }
        self.overall.invoices = self.invoices.len() as u64;
        self.overall.customers = self.customers.len() as u64;
        self.overall.products = self.products.len() as u64;

        let invoice = self.invoices.get_mut(&line.invoice_no).unwrap();
        if let Some(rejection) = check_rules(line, kind, invoice.header.as_ref()) {
            invoice.rejected_lines += 1;
            self.overall.rejected.increment(rejection);
            return Ok(LineOutcome::Rejected(rejection));
        }

        // The line is accepted: it fixes the invoice's header if it is the first, and adds to
        // the invoice, the customer and the product.
        self.overall.accepted += 1;
        self.overall.accepted_amount = add_money(self.overall.accepted_amount, line, || {
            "accepted amount".to_owned()
        })?;
        let first_accepted = invoice.header.is_none();
        if first_accepted {
            invoice.header = Some(InvoiceHeader {
                customer_id: line.customer_id,
                country: line.country.clone(),
            });
        }
        invoice.accepted_lines += 1;
        invoice.quantity = add_quantity(invoice.quantity, line, || {
            format!("quantity of invoice {}", line.invoice_no)
        })?;
        invoice.amount = add_money(invoice.amount, line, || {
            format!("amount of invoice {}", line.invoice_no)
        })?;

        if let Some(customer_id) = line.customer_id {
            let customer = self.customers.get_mut(&customer_id).unwrap();
            customer.add(customer_id, line, kind, first_accepted)?;
        }

        let product = self.products.get_mut(&line.stock_code).unwrap();
        product.accepted_lines += 1;
        product.quantity = add_quantity(product.quantity, line, || {
            format!("quantity of stock code {}", line.stock_code)
        })?;
        product.amount = add_money(product.amount, line, || {
            format!("amount of stock code {}", line.stock_code)
        })?;

        Ok(LineOutcome::Accepted)
    }
}

impl Overall {
    /// Returns the number of rejected lines, all reasons together.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.total()
    }
}

impl Rejection {
    /// Every rule in the order in which they are checked.
    pub const ALL: [Rejection; 5] = [
        Rejection::NegativePrice,
        Rejection::ZeroQuantity,
        Rejection::PositiveQuantityOnCancellation,
        Rejection::CustomerMismatch,
        Rejection::CountryMismatch,
    ];
}

impl fmt::Display for Rejection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Rejection::NegativePrice => "negative unit price",
            Rejection::ZeroQuantity => "zero quantity",
            Rejection::PositiveQuantityOnCancellation => "positive quantity on a cancellation",
            Rejection::CustomerMismatch => "customer differs from the invoice's customer",
            Rejection::CountryMismatch => "country differs from the invoice's country",
        };
        formatter.write_str(text)
    }
}

impl RejectionCounts {
    /// Returns the number of lines rejected for `rejection`.
    pub fn get(&self, rejection: Rejection) -> u64 {
        match rejection {
            Rejection::NegativePrice => self.negative_price,
            Rejection::ZeroQuantity => self.zero_quantity,
            Rejection::PositiveQuantityOnCancellation => self.positive_quantity_on_cancellation,
            Rejection::CustomerMismatch => self.customer_mismatch,
            Rejection::CountryMismatch => self.country_mismatch,
        }
    }

    /// Returns the number of rejected lines, all reasons together.
    pub fn total(&self) -> u64 {
        Rejection::ALL
            .iter()
            .map(|&rejection| self.get(rejection))
            .sum()
    }

    fn increment(&mut self, rejection: Rejection) {
        let count = match rejection {
            Rejection::NegativePrice => &mut self.negative_price,
            Rejection::ZeroQuantity => &mut self.zero_quantity,
            Rejection::PositiveQuantityOnCancellation => {
                &mut self.positive_quantity_on_cancellation
            }
            Rejection::CustomerMismatch => &mut self.customer_mismatch,
            Rejection::CountryMismatch => &mut self.country_mismatch,
        };
        *count += 1;
    }
}

impl InvoiceTotals {
    fn new(kind: InvoiceKind) -> Self {
        InvoiceTotals {
            kind,
            header: None,
            accepted_lines: 0,
            rejected_lines: 0,
            quantity: 0,
            amount: Money::ZERO,
        }
    }
}

impl CustomerTotals {
    fn add(
        &mut self,
        customer_id: u32,
        line: &InvoiceLine,
        kind: InvoiceKind,
        first_accepted: bool,
    ) -> Result<(), TotalOverflow> {
        // An invoice's accepted lines all share its first accepted line's customer, so counting
        // first accepted lines counts distinct invoices.
        if first_accepted {
            self.invoices += 1;
        }
        self.accepted_lines += 1;

        let sum = match kind {
            InvoiceKind::Sale => &mut self.purchases,
            InvoiceKind::Cancellation => &mut self.returns,
            InvoiceKind::Adjustment => &mut self.adjustments,
        };
        *sum = add_money(*sum, line, || {
            format!("{kind:?} amount of customer {customer_id}")
        })?;
        Ok(())
    }
}

/// Returns the first rule that rejects `line`, given its invoice's header so far.
fn check_rules(
    line: &InvoiceLine,
    kind: InvoiceKind,
    header: Option<&InvoiceHeader>,
) -> Option<Rejection> {
    if line.unit_price.is_negative() {
        return Some(Rejection::NegativePrice);
    }
    if line.quantity == 0 {
        return Some(Rejection::ZeroQuantity);
    }
    if kind == InvoiceKind::Cancellation && line.quantity > 0 {
        return Some(Rejection::PositiveQuantityOnCancellation);
    }
    let header = header?;
    if header.customer_id != line.customer_id {
        return Some(Rejection::CustomerMismatch);
    }
    if header.country != line.country {
        return Some(Rejection::CountryMismatch);
    }
    None
}

fn add_money(
    total: Money,
    line: &InvoiceLine,
    name: impl FnOnce() -> String,
) -> Result<Money, TotalOverflow> {
    total.checked_add(line.amount).ok_or_else(|| TotalOverflow {
        line: line.line,
        total: name(),
    })
}

fn add_quantity(
    total: i64,
    line: &InvoiceLine,
    name: impl FnOnce() -> String,
) -> Result<i64, TotalOverflow> {
    total
        .checked_add(line.quantity)
        .ok_or_else(|| TotalOverflow {
            line: line.line,
            total: name(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n";

    fn record_all(body: &str) -> (Expected, Vec<LineOutcome>) {
        let text = format!("{HEADER}{body}");
        let mut expected = Expected::default();
        let outcomes = LineReader::new(text.as_bytes())
            .map(|line| expected.record(&line.unwrap()).unwrap())
            .collect();
        (expected, outcomes)
    }

    fn money(text: &str) -> Money {
        text.parse().unwrap()
    }

    #[test]
    fn rules_fire_in_order() {
        let (expected, outcomes) = record_all(concat!(
            // Negative price and zero quantity: the price rule is checked first.
            "A1,B,Adjust bad debt,0,2011-08-12 14:51:00,-1.00,,United Kingdom\n",
            "2,X,ZERO,0,2011-01-01 10:00:00,1.00,12346.0,United Kingdom\n",
            "C3,X,POSITIVE,2,2011-01-01 10:00:00,1.00,12346.0,United Kingdom\n",
            "C3,X,NEGATIVE,-2,2011-01-01 10:00:00,1.00,12346.0,United Kingdom\n",
            "C3,X,OTHER CUSTOMER,-2,2011-01-01 10:00:00,1.00,12347.0,United Kingdom\n",
            "C3,X,NO CUSTOMER,-2,2011-01-01 10:00:00,1.00,,United Kingdom\n",
            "C3,X,OTHER COUNTRY,-2,2011-01-01 10:00:00,1.00,12346.0,France\n",
            "C3,X,BOTH DIFFER,-2,2011-01-01 10:00:00,1.00,12347.0,France\n",
        ));
        assert_eq!(
            outcomes,
            [
                LineOutcome::Rejected(Rejection::NegativePrice),
                LineOutcome::Rejected(Rejection::ZeroQuantity),
                LineOutcome::Rejected(Rejection::PositiveQuantityOnCancellation),
                LineOutcome::Accepted,
                LineOutcome::Rejected(Rejection::CustomerMismatch),
                LineOutcome::Rejected(Rejection::CustomerMismatch),
                LineOutcome::Rejected(Rejection::CountryMismatch),
                LineOutcome::Rejected(Rejection::CustomerMismatch),
            ]
        );

        let rejected = &expected.overall.rejected;
        assert_eq!(rejected.get(Rejection::NegativePrice), 1);
        assert_eq!(rejected.get(Rejection::ZeroQuantity), 1);
        assert_eq!(rejected.get(Rejection::PositiveQuantityOnCancellation), 1);
        assert_eq!(rejected.get(Rejection::CustomerMismatch), 3);
        assert_eq!(rejected.get(Rejection::CountryMismatch), 1);
        assert_eq!(expected.overall.rejected_total(), 7);
        assert_eq!(expected.overall.accepted, 1);
    }

    #[test]
    fn rejected_line_does_not_set_header() {
        let (expected, outcomes) = record_all(concat!(
            "10,X,ZERO,0,2011-01-01 10:00:00,1.00,12346.0,France\n",
            "10,X,FIRST ACCEPTED,1,2011-01-01 10:00:00,1.00,,United Kingdom\n",
            "10,X,MISMATCH,1,2011-01-01 10:00:00,1.00,12346.0,United Kingdom\n",
        ));
        assert_eq!(outcomes[1], LineOutcome::Accepted);
        assert_eq!(
            outcomes[2],
            LineOutcome::Rejected(Rejection::CustomerMismatch)
        );

        let invoice = &expected.invoices["10"];
        assert_eq!(
            invoice.header,
            Some(InvoiceHeader {
                customer_id: None,
                country: "United Kingdom".to_owned(),
            })
        );
        assert_eq!(invoice.accepted_lines, 1);
        assert_eq!(invoice.rejected_lines, 2);

        // The customer was seen only on rejected lines, so it has an entry with zero totals.
        assert_eq!(expected.customers[&12346], CustomerTotals::default());
    }

    #[test]
    fn totals_per_invoice_customer_product() {
        let (expected, _) = record_all(concat!(
            "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n",
            "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom\n",
            "536366,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-01 08:28:00,2.55,17850.0,United Kingdom\n",
            "C536379,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-1,2010-12-01 09:41:00,2.55,17850.0,United Kingdom\n",
            "536367,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,2010-12-01 09:00:00,0.001,,United Kingdom\n",
            "536368,BAD,SHORT\n",
        ));

        let invoice = &expected.invoices["536365"];
        assert_eq!(invoice.kind, InvoiceKind::Sale);
        assert_eq!(invoice.accepted_lines, 2);
        assert_eq!(invoice.quantity, 12);
        assert_eq!(invoice.amount, money("35.64"));
        assert_eq!(expected.invoices["C536379"].kind, InvoiceKind::Cancellation);
        assert_eq!(expected.invoices["C536379"].amount, money("-2.55"));
        assert!(!expected.invoices.contains_key("536368"));

        let customer = &expected.customers[&17850];
        assert_eq!(customer.purchases, money("40.74"));
        assert_eq!(customer.returns, money("-2.55"));
        assert_eq!(customer.adjustments, Money::ZERO);
        assert_eq!(customer.accepted_lines, 4);
        assert_eq!(customer.invoices, 3);
        assert_eq!(expected.customers.len(), 1);

        let product = &expected.products["85123A"];
        assert_eq!(product.accepted_lines, 4);
        assert_eq!(product.quantity, 8);
        assert_eq!(product.amount, money("17.851"));

        let overall = &expected.overall;
        assert_eq!(overall.lines_read, 6);
        assert_eq!(overall.malformed, 1);
        assert_eq!(overall.accepted, 5);
        assert_eq!(overall.invoices, 4);
        assert_eq!(overall.customers, 1);
        assert_eq!(overall.products, 2);
        assert_eq!(overall.gross_amount, money("38.191"));
        assert_eq!(overall.accepted_amount, money("38.191"));
    }

    #[test]
    fn adjustment_with_customer_is_neither() {
        let (expected, _) =
            record_all("A1,B,Adjust,1,2011-08-12 14:50:00,5.00,12346.0,United Kingdom\n");
        let customer = &expected.customers[&12346];
        assert_eq!(customer.purchases, Money::ZERO);
        assert_eq!(customer.returns, Money::ZERO);
        assert_eq!(customer.adjustments, money("5.00"));
        assert_eq!(customer.accepted_lines, 1);
        assert_eq!(customer.invoices, 1);
    }

    #[test]
    fn overflowing_total_is_error() {
        let line = |number: u64| {
            let text = format!(
                "{HEADER}1,X,HUGE,9000000000000000,2011-01-01 10:00:00,1.000,,United Kingdom\n"
            );
            let mut parsed = LineReader::new(text.as_bytes()).next().unwrap().unwrap();
            if let Ok(line) = &mut parsed {
                line.line = number;
            }
            parsed
        };
        let error = Expected::from_lines([line(2), line(3)]).unwrap_err();
        assert_eq!(error.line, 3);
        assert_eq!(error.total, "gross amount");
    }

    #[test]
    fn prefix_counts_malformed_lines() {
        use std::io::Write;

        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("lines.csv.gz");
        let file = std::fs::File::create(&path).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let body = concat!(
            "536365,85123A,HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n",
            "536366,BAD,SHORT\n",
            "536367,71053,LANTERN,2,2010-12-01 08:34:00,3.39,13047.0,United Kingdom\n",
        );
        encoder
            .write_all(format!("{HEADER}{body}").as_bytes())
            .unwrap();
        encoder.finish().unwrap();

        let two = Expected::from_file_prefix(&path, Some(2)).unwrap();
        assert_eq!(two.overall.lines_read, 2);
        assert_eq!(two.overall.malformed, 1);
        assert_eq!(two.overall.accepted, 1);
        assert!(!two.invoices.contains_key("536367"));

        let all = Expected::from_file_prefix(&path, None).unwrap();
        assert_eq!(all, Expected::from_file(&path).unwrap());
        assert_eq!(all.overall.lines_read, 3);
        assert_eq!(Expected::from_file_prefix(&path, Some(10)).unwrap(), all);
        assert_eq!(
            Expected::from_file_prefix(&path, Some(0)).unwrap(),
            Expected::default()
        );
    }
}
