//! Reads the shipped Online Retail file and checks the data set's published facts and the
//! expected totals computed from it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use aether_examples::retail::expected::{Expected, Rejection};
use aether_examples::retail::line::InvoiceKind;
use aether_examples::retail::money::Money;
use aether_examples::retail::source::{LineReader, count_data_lines_in_file};

/// Counts taken from every parsed line, before any rejection rule.
#[derive(Default)]
struct RawFacts {
    lines: u64,
    malformed: u64,
    lossy_descriptions: u64,
    without_customer: u64,
    negative_quantity: u64,
    zero_price: u64,
    negative_price: u64,
    description_with_comma: u64,
    empty_description: u64,
    stock_codes: BTreeSet<String>,
    first_line: u64,
    last_line: u64,
}

struct Data {
    raw: RawFacts,
    expected: Expected,
}

fn data_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/online-retail.csv.gz")
}

/// Reads the file once for all tests in this file.
fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut raw = RawFacts::default();
        let mut expected = Expected::default();
        let mut reader = LineReader::open(data_path()).unwrap();
        for line in reader.by_ref() {
            let line = line.unwrap();
            raw.lines += 1;
            expected.record(&line).unwrap();
            let Ok(line) = line else {
                raw.malformed += 1;
                continue;
            };
            if raw.first_line == 0 {
                raw.first_line = line.line;
            }
            raw.last_line = line.line;
            raw.without_customer += u64::from(line.customer_id.is_none());
            raw.negative_quantity += u64::from(line.quantity < 0);
            raw.zero_price += u64::from(line.unit_price == Money::ZERO);
            raw.negative_price += u64::from(line.unit_price.is_negative());
            raw.description_with_comma += u64::from(line.description.contains(','));
            raw.empty_description += u64::from(line.description.is_empty());
            raw.stock_codes.insert(line.stock_code);
        }
        raw.lossy_descriptions = reader.lossy_descriptions();
        assert_eq!(reader.lines_read(), raw.lines);
        Data { raw, expected }
    })
}

#[test]
fn published_line_facts() {
    let raw = &data().raw;
    assert_eq!(raw.lines, 541_909);
    assert_eq!(raw.malformed, 0);
    assert_eq!(raw.lossy_descriptions, 0);
    assert_eq!(raw.first_line, 2);
    assert_eq!(raw.last_line, 541_910);
    assert_eq!(raw.without_customer, 135_080);
    assert_eq!(raw.negative_quantity, 10_624);
    assert_eq!(raw.zero_price, 2_515);
    assert_eq!(raw.negative_price, 2);
    assert_eq!(raw.description_with_comma, 4_796);
    assert_eq!(raw.empty_description, 1_454);
    assert_eq!(raw.stock_codes.len(), 4_070);
}

#[test]
fn line_count_matches_reader() {
    assert_eq!(count_data_lines_in_file(data_path()).unwrap(), 541_909);
}

#[test]
fn published_totals() {
    let overall = &data().expected.overall;
    assert_eq!(overall.lines_read, 541_909);
    assert_eq!(overall.invoices, 25_900);
    assert_eq!(overall.customers, 4_372);
    assert_eq!(overall.products, 4_070);

    // The published sum, 9,747,747.93, is rounded to pence; four lines priced 0.001 add 0.004.
    assert_eq!(overall.gross_amount, Money::from_thousandths(9_747_747_934));
    assert_eq!(overall.gross_amount.thousandths() / 10, 974_774_793);
    assert_eq!(overall.gross_amount.to_string(), "9747747.934");
}

#[test]
fn invoice_kinds() {
    let invoices = &data().expected.invoices;
    let count = |kind| {
        invoices
            .values()
            .filter(|invoice| invoice.kind == kind)
            .count()
    };
    assert_eq!(invoices.len(), 25_900);
    assert_eq!(count(InvoiceKind::Cancellation), 3_836);
    assert_eq!(count(InvoiceKind::Adjustment), 3);
    assert_eq!(count(InvoiceKind::Sale), 25_900 - 3_836 - 3);
}

#[test]
fn every_line_is_counted_once() {
    let overall = &data().expected.overall;
    assert_eq!(
        overall.accepted + overall.rejected_total() + overall.malformed,
        overall.lines_read
    );
    let rejected: u64 = Rejection::ALL
        .iter()
        .map(|&rejection| overall.rejected.get(rejection))
        .sum();
    assert_eq!(rejected, overall.rejected_total());
}

#[test]
fn maps_add_up_to_overall() {
    let expected = &data().expected;
    let overall = &expected.overall;

    let mut invoice_amount = Money::ZERO;
    let mut invoice_lines = 0;
    let mut rejected_lines = 0;
    for invoice in expected.invoices.values() {
        invoice_amount = invoice_amount.checked_add(invoice.amount).unwrap();
        invoice_lines += invoice.accepted_lines;
        rejected_lines += invoice.rejected_lines;
    }
    assert_eq!(invoice_amount, overall.accepted_amount);
    assert_eq!(invoice_lines, overall.accepted);
    assert_eq!(rejected_lines, overall.rejected_total());

    let mut product_amount = Money::ZERO;
    let mut product_lines = 0;
    for product in expected.products.values() {
        product_amount = product_amount.checked_add(product.amount).unwrap();
        product_lines += product.accepted_lines;
    }
    assert_eq!(product_amount, overall.accepted_amount);
    assert_eq!(product_lines, overall.accepted);

    // Customer sums equal the amounts of the invoices whose header has that customer.
    let mut customer_amount = Money::ZERO;
    let mut customer_invoices = 0;
    for customer in expected.customers.values() {
        for sum in [customer.purchases, customer.returns, customer.adjustments] {
            customer_amount = customer_amount.checked_add(sum).unwrap();
        }
        assert!(customer.returns <= Money::ZERO);
        assert_eq!(customer.adjustments, Money::ZERO);
        customer_invoices += customer.invoices;
    }
    let mut invoices_with_customer = 0;
    let mut amount_with_customer = Money::ZERO;
    for invoice in expected.invoices.values() {
        if let Some(header) = &invoice.header
            && header.customer_id.is_some()
        {
            invoices_with_customer += 1;
            amount_with_customer = amount_with_customer.checked_add(invoice.amount).unwrap();
        }
    }
    assert_eq!(customer_amount, amount_with_customer);
    assert_eq!(customer_invoices, invoices_with_customer);
}

#[test]
fn rejections_per_rule() {
    let expected = &data().expected;
    let rejected = &expected.overall.rejected;

    // Only the two bad-debt adjustments priced -11062.06 break a rule in this data set.
    assert_eq!(rejected.get(Rejection::NegativePrice), 2);
    assert_eq!(rejected.get(Rejection::ZeroQuantity), 0);
    assert_eq!(rejected.get(Rejection::PositiveQuantityOnCancellation), 0);
    assert_eq!(rejected.get(Rejection::CustomerMismatch), 0);
    assert_eq!(rejected.get(Rejection::CountryMismatch), 0);
    assert_eq!(expected.overall.accepted, 541_907);
    assert_eq!(
        expected.overall.accepted_amount,
        Money::from_thousandths(9_769_872_054)
    );

    for invoice_no in ["A563186", "A563187"] {
        let invoice = &expected.invoices[invoice_no];
        assert_eq!(invoice.header, None, "invoice {invoice_no}");
        assert_eq!(invoice.accepted_lines, 0, "invoice {invoice_no}");
        assert_eq!(invoice.rejected_lines, 1, "invoice {invoice_no}");
    }
}

#[test]
fn sample_customers() {
    let customers = &data().expected.customers;
    // (customer, purchases, returns, accepted lines, invoices), amounts in thousandths.
    let samples = [
        (17850, 5_391_210, -102_580, 312, 35),
        (12346, 77_183_600, -77_183_600, 2, 2),
        (14911, 143_825_060, -11_252_440, 5_903, 248),
    ];
    for (id, purchases, returns, lines, invoices) in samples {
        let customer = &customers[&id];
        assert_eq!(customer.purchases.thousandths(), purchases, "customer {id}");
        assert_eq!(customer.returns.thousandths(), returns, "customer {id}");
        assert_eq!(customer.accepted_lines, lines, "customer {id}");
        assert_eq!(customer.invoices, invoices, "customer {id}");
    }
}

#[test]
fn sample_invoices() {
    let invoices = &data().expected.invoices;
    // (invoice, kind, customer, country, accepted lines, quantity, amount in thousandths).
    let samples = [
        (
            "536365",
            InvoiceKind::Sale,
            Some(17850),
            "United Kingdom",
            7,
            40,
            139_120,
        ),
        (
            "C536379",
            InvoiceKind::Cancellation,
            Some(14527),
            "United Kingdom",
            1,
            -1,
            -27_500,
        ),
        (
            "A563185",
            InvoiceKind::Adjustment,
            None,
            "United Kingdom",
            1,
            1,
            11_062_060,
        ),
        (
            "581587",
            InvoiceKind::Sale,
            Some(12680),
            "France",
            15,
            105,
            249_450,
        ),
    ];
    for (number, kind, customer_id, country, lines, quantity, amount) in samples {
        let invoice = &invoices[number];
        let header = invoice.header.as_ref().unwrap();
        assert_eq!(invoice.kind, kind, "invoice {number}");
        assert_eq!(header.customer_id, customer_id, "invoice {number}");
        assert_eq!(header.country, country, "invoice {number}");
        assert_eq!(invoice.accepted_lines, lines, "invoice {number}");
        assert_eq!(invoice.quantity, quantity, "invoice {number}");
        assert_eq!(invoice.amount.thousandths(), amount, "invoice {number}");
    }
}
