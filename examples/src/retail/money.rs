//! Exact money amounts in thousandths of a pound.
//!
//! The scale is three decimal places because the largest number of decimals in any `UnitPrice`
//! of the shipped data set is three, on four lines priced `0.001`. Every other price has one or
//! two. Amounts are `i64` counts of thousandths with no floating point, so the largest amount is
//! about 9.2 × 10^15 pounds. All arithmetic is checked.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An exact signed amount of money in thousandths of a pound.
///
/// `Display` writes pounds with two decimals, and a third only when the amount is not a whole
/// number of pence: `2.55`, `-11062.06`, `0.001`. It writes no currency symbol and no thousands
/// separators, so [`Money::from_str`] reads the text back. Serde stores the integer count of
/// thousandths, so `2.55` is serialized as `2550`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

/// The reasons a text amount cannot be parsed into [`Money`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// The text is empty.
    #[error("empty amount")]
    Empty,
    /// The text is not an optional sign, digits, and an optional point followed by digits.
    #[error("expected an optional sign, digits and an optional decimal point followed by digits")]
    InvalidFormat,
    /// The text has more decimal places than [`Money::DECIMALS`].
    #[error(
        "{decimals} decimal places, more than the 3 that amounts in thousandths of a pound hold"
    )]
    TooManyDecimals {
        /// The number of digits after the decimal point.
        decimals: usize,
    },
    /// The amount does not fit in an `i64` count of thousandths.
    #[error("out of range for an i64 count of thousandths of a pound")]
    OutOfRange,
}

impl Money {
    /// Number of decimal places of a pound that an amount holds.
    pub const DECIMALS: usize = 3;

    /// Number of units in one pound.
    pub const SCALE: i64 = 1000;

    /// Zero pounds.
    pub const ZERO: Money = Money(0);

    /// Creates an amount from a count of thousandths of a pound.
    pub const fn from_thousandths(thousandths: i64) -> Self {
        Money(thousandths)
    }

    /// Returns the amount as a count of thousandths of a pound.
    pub const fn thousandths(self) -> i64 {
        self.0
    }

    /// Returns true when the amount is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Adds two amounts, or returns `None` on `i64` overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// Multiplies the amount by a quantity, or returns `None` on `i64` overflow.
    pub fn checked_mul(self, quantity: i64) -> Option<Money> {
        self.0.checked_mul(quantity).map(Money)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    /// Parses a decimal amount of pounds such as `2.55`, `-11062.06`, `0.001` or `7`.
    ///
    /// A leading `+` or `-` is allowed. Both sides of a decimal point need at least one digit.
    /// Whitespace, exponents and thousands separators are rejected. More than three decimals is
    /// an error even when the extra digits are zeros, so no amount is ever rounded.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(MoneyError::Empty);
        }

        let (negative, unsigned) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (unsigned, None),
        };
        if !is_digits(whole) || fraction.is_some_and(|digits| !is_digits(digits)) {
            return Err(MoneyError::InvalidFormat);
        }
        let fraction = fraction.unwrap_or("");
        if fraction.len() > Money::DECIMALS {
            return Err(MoneyError::TooManyDecimals {
                decimals: fraction.len(),
            });
        }

        // The fraction is padded on the right to three digits: `.5` is 500 thousandths.
        let mut thousandths = digits_value(whole)
            .and_then(|pounds| pounds.checked_mul(Money::SCALE))
            .ok_or(MoneyError::OutOfRange)?;
        let mut place = Money::SCALE;
        for digit in fraction.bytes() {
            place /= 10;
            thousandths = thousandths
                .checked_add(i64::from(digit - b'0') * place)
                .ok_or(MoneyError::OutOfRange)?;
        }
        if negative {
            thousandths = -thousandths;
        }
        Ok(Money(thousandths))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.is_negative() { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let scale = Money::SCALE.unsigned_abs();
        let pounds = magnitude / scale;
        let fraction = magnitude % scale;
        if fraction.is_multiple_of(10) {
            write!(formatter, "{sign}{pounds}.{:02}", fraction / 10)
        } else {
            write!(formatter, "{sign}{pounds}.{fraction:03}")
        }
    }
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

fn digits_value(digits: &str) -> Option<i64> {
    digits.bytes().try_fold(0_i64, |value, digit| {
        value.checked_mul(10)?.checked_add(i64::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Money, MoneyError> {
        text.parse()
    }

    #[test]
    fn parse_prices_from_data() {
        assert_eq!(parse("2.55"), Ok(Money::from_thousandths(2550)));
        assert_eq!(parse("0.001"), Ok(Money::from_thousandths(1)));
        assert_eq!(parse("0.5"), Ok(Money::from_thousandths(500)));
        assert_eq!(parse("7"), Ok(Money::from_thousandths(7000)));
        assert_eq!(parse("38970.0"), Ok(Money::from_thousandths(38_970_000)));
        assert_eq!(parse("-11062.06"), Ok(Money::from_thousandths(-11_062_060)));
        assert_eq!(parse("0.0"), Ok(Money::ZERO));
        assert_eq!(parse("-0.00"), Ok(Money::ZERO));
        assert_eq!(parse("+1.25"), Ok(Money::from_thousandths(1250)));
    }

    #[test]
    fn parse_rejects_too_many_decimals() {
        assert_eq!(
            parse("1.2345"),
            Err(MoneyError::TooManyDecimals { decimals: 4 })
        );
        assert_eq!(
            parse("0.0010"),
            Err(MoneyError::TooManyDecimals { decimals: 4 })
        );
    }

    #[test]
    fn parse_rejects_bad_text() {
        assert_eq!(parse(""), Err(MoneyError::Empty));
        for text in [
            "-", "+", ".", "1.", ".5", "1.2.3", "1e3", " 1.00", "1.00 ", "1,000.00", "£1.00",
            "--1", "1.-5", "NaN",
        ] {
            assert_eq!(parse(text), Err(MoneyError::InvalidFormat), "text {text:?}");
        }
    }

    #[test]
    fn parse_rejects_out_of_range() {
        assert_eq!(parse("9223372036854775808"), Err(MoneyError::OutOfRange));
        assert_eq!(parse("9223372036854776"), Err(MoneyError::OutOfRange));
        assert_eq!(parse("9223372036854775.808"), Err(MoneyError::OutOfRange));
        assert_eq!(
            parse("9223372036854775.807"),
            Ok(Money::from_thousandths(i64::MAX))
        );
    }

    #[test]
    fn display_writes_pounds() {
        assert_eq!(Money::from_thousandths(2550).to_string(), "2.55");
        assert_eq!(Money::from_thousandths(1).to_string(), "0.001");
        assert_eq!(
            Money::from_thousandths(-11_062_060).to_string(),
            "-11062.06"
        );
        assert_eq!(Money::from_thousandths(-5).to_string(), "-0.005");
        assert_eq!(Money::ZERO.to_string(), "0.00");
        assert_eq!(Money::from_thousandths(7000).to_string(), "7.00");
        assert_eq!(
            Money::from_thousandths(i64::MIN).to_string(),
            "-9223372036854775.808"
        );
    }

    #[test]
    fn display_round_trips_through_parse() {
        for thousandths in [
            0,
            1,
            -1,
            10,
            999,
            1000,
            -1001,
            2550,
            9_747_747_934,
            i64::MAX,
        ] {
            let money = Money::from_thousandths(thousandths);
            assert_eq!(parse(&money.to_string()), Ok(money));
        }
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        let price = Money::from_thousandths(2550);
        assert_eq!(price.checked_mul(-3), Some(Money::from_thousandths(-7650)));
        assert_eq!(price.checked_mul(i64::MAX), None);
        assert_eq!(
            Money::from_thousandths(i64::MAX).checked_add(Money::from_thousandths(1)),
            None
        );
    }

    #[test]
    fn serde_uses_thousandths() {
        let money = Money::from_thousandths(-2550);
        assert_eq!(serde_json::to_string(&money).unwrap(), "-2550");
        assert_eq!(serde_json::from_str::<Money>("-2550").unwrap(), money);
    }
}
