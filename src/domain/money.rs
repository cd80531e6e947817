//! Exact money: `Decimal` in code and API, integer minor units (cents) in the database.
use rust_decimal::Decimal;

/// Every currency we accept has two minor-unit digits (EUR, USD, GBP, CHF, ...).
pub const MINOR_DIGITS: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("has more than {MINOR_DIGITS} decimal places")]
    TooPrecise,
    #[error("is too large")]
    Overflow,
    #[error("must not be negative")]
    Negative,
}

/// Decimal -> minor units, refusing anything that would lose a fraction of a cent.
pub fn to_minor(amount: Decimal) -> Result<i64, MoneyError> {
    let normalized = amount.normalize();
    if normalized.scale() > MINOR_DIGITS {
        return Err(MoneyError::TooPrecise);
    }
    let cents = normalized
        .checked_mul(Decimal::from(10_i64.pow(MINOR_DIGITS)))
        .ok_or(MoneyError::Overflow)?;
    i64::try_from(cents).map_err(|_| MoneyError::Overflow)
}

/// As [`to_minor`], for amounts that cannot be negative (costs, deal amounts, budgets).
pub fn to_minor_non_negative(amount: Decimal) -> Result<i64, MoneyError> {
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(MoneyError::Negative);
    }
    to_minor(amount)
}

/// Minor units -> Decimal with exactly two decimal places ("12.30").
pub fn from_minor(minor: i64) -> Decimal {
    Decimal::new(minor, MINOR_DIGITS)
}

/// A three-letter upper-case ISO 4217 code.
pub fn parse_currency(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    (code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn round_trips_exactly() {
        // 0.10 + 0.20 is 0.30 in cents: 10 + 20 = 30.
        let sum = to_minor(d("0.10")).unwrap() + to_minor(d("0.20")).unwrap();
        assert_eq!(from_minor(sum).to_string(), "0.30");
        assert_eq!(to_minor(d("1234.5")).unwrap(), 123_450);
        assert_eq!(from_minor(123_450).to_string(), "1234.50");
        assert_eq!(to_minor(d("-3.07")).unwrap(), -307);
        assert_eq!(to_minor(d("2.500")).unwrap(), 250, "trailing zeros are not precision");
    }

    #[test]
    fn refuses_fractions_of_a_cent_and_overflow() {
        assert_eq!(to_minor(d("0.001")), Err(MoneyError::TooPrecise));
        assert_eq!(to_minor(d("99999999999999999999")), Err(MoneyError::Overflow));
        assert_eq!(to_minor_non_negative(d("-1")), Err(MoneyError::Negative));
        assert_eq!(to_minor_non_negative(d("0")), Ok(0));
    }

    #[test]
    fn currency_codes() {
        assert_eq!(parse_currency("eur").as_deref(), Some("EUR"));
        assert_eq!(parse_currency("EURO"), None);
        assert_eq!(parse_currency("E1R"), None);
    }
}
