//! What the API accepts as text, in one place: decimals in plain notation, calendar dates as
//! `YYYY-MM-DD`, points in time within years 1900 to 9999, and strings without NUL of bounded
//! length. Both databases store whatever passes these (PostgreSQL refuses NUL and year 0, SQLite
//! refuses long LIKE patterns), so nothing past them fails inside the database.
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;

/// The first and last year a date or time may have: PostgreSQL stores no year 0, and four
/// digits keep dates and times sortable as text on SQLite.
pub const MIN_YEAR: i32 = 1900;
pub const MAX_YEAR: i32 = 9999;

/// Digits a decimal may have in all: as many as a `Decimal` holds exactly (beyond them it would
/// round the fraction silently). Whether an amount fits money is the services' question.
pub const MAX_DIGITS: usize = 28;

/// Why a text is not a value of its kind; the message follows the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("must be a decimal in plain notation such as \"-1234.50\" (no exponent, no \"+\", no spaces)")]
    DecimalNotation,
    #[error("may have at most {MAX_DIGITS} digits")]
    DecimalDigits,
    #[error("must be a date written YYYY-MM-DD, e.g. \"2026-01-31\"")]
    DateNotation,
    #[error("must be an RFC 3339 date-time, e.g. \"2026-01-31T09:30:00Z\"")]
    DateTimeNotation,
    #[error("must lie in the years {MIN_YEAR} to {MAX_YEAR} (UTC)")]
    YearOutOfRange,
    #[error("must not contain a NUL character (\\u0000)")]
    Nul,
    #[error("may have at most {0} characters")]
    TooLong(usize),
}

/// A decimal written `-?\d+(\.\d+)?`, with at most [`MAX_DIGITS`] digits. `rust_decimal` alone
/// would take "1e3", "+1" and " 1".
pub fn parse_decimal(s: &str) -> Result<Decimal, InputError> {
    let digits = plain_number_digits(s).ok_or(InputError::DecimalNotation)?;
    if digits > MAX_DIGITS {
        return Err(InputError::DecimalDigits);
    }
    Decimal::from_str(s).map_err(|_| InputError::DecimalNotation)
}

/// The number of digits of `s` if it is a number in plain notation: `-` or nothing, digits, and
/// at most one `.` followed by digits (`-?\d+(\.\d+)?`); `None` otherwise.
pub fn plain_number_digits(s: &str) -> Option<usize> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    (all_digits(int) && frac.is_none_or(all_digits)).then(|| int.len() + frac.map_or(0, str::len))
}

/// A calendar date written `YYYY-MM-DD` (zero-padded), in the years [`MIN_YEAR`] to [`MAX_YEAR`].
pub fn parse_date(s: &str) -> Result<NaiveDate, InputError> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter()
            .enumerate()
            .all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    if !shaped {
        return Err(InputError::DateNotation);
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| InputError::DateNotation)?;
    year_in_range(date.year()).map(|()| date)
}

/// An RFC 3339 date-time, converted to UTC, whose UTC year is in [`MIN_YEAR`] to [`MAX_YEAR`]
/// (so "9999-12-31T23:30:00-01:00", which is year 10000 in UTC, is refused).
pub fn parse_datetime(s: &str) -> Result<chrono::DateTime<Utc>, InputError> {
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| InputError::DateTimeNotation)?;
    let t = t.with_timezone(&Utc);
    year_in_range(t.year()).map(|()| t)
}

/// Whether a time taken from elsewhere (a stored value, a default) is one the API accepts.
pub fn year_in_range(year: i32) -> Result<(), InputError> {
    if (MIN_YEAR..=MAX_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(InputError::YearOutOfRange)
    }
}

/// A text without NUL of at most `max` characters (Unicode scalar values).
pub fn check_text(s: &str, max: usize) -> Result<(), InputError> {
    if s.as_bytes().contains(&0) {
        return Err(InputError::Nul);
    }
    // A UTF-8 character is at least one byte, so a text of at most `max` bytes is short enough.
    if s.len() > max && s.chars().count() > max {
        return Err(InputError::TooLong(max));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_in_plain_notation_only() {
        for ok in [
            "0",
            "-0",
            "1234.50",
            "-3.07",
            "007",
            "9999999999999999999999999999",
            "0.000000000000000000000000001",
        ] {
            assert_eq!(parse_decimal(ok).unwrap(), Decimal::from_str(ok).unwrap(), "{ok}");
        }
        for bad in [
            "1e3", "1E2", "+1", " 1", "1 ", "1.", ".5", "-", "", "1,5", "1.2.3", "--1", "0x10", "NaN",
        ] {
            assert_eq!(parse_decimal(bad), Err(InputError::DecimalNotation), "{bad:?}");
        }
        assert_eq!(parse_decimal(&"9".repeat(29)), Err(InputError::DecimalDigits));
        assert_eq!(parse_decimal(&format!("1.{}", "1".repeat(28))), Err(InputError::DecimalDigits));
        assert!(
            rust_decimal::Decimal::from_str("+1").is_ok(),
            "why parse_decimal checks the notation first"
        );
    }

    #[test]
    fn dates_zero_padded_within_the_years() {
        assert_eq!(parse_date("2025-01-01").unwrap(), NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
        assert!(parse_date("1900-01-01").is_ok());
        assert!(parse_date("9999-12-31").is_ok());
        for bad in [
            "2025-1-1",
            "2025-01-1",
            " 2025-01-01",
            "2025/01/01",
            "20250101",
            "2025-02-30",
            "+2025-01-01",
        ] {
            assert_eq!(parse_date(bad), Err(InputError::DateNotation), "{bad:?}");
        }
        assert_eq!(parse_date("0000-01-01"), Err(InputError::YearOutOfRange));
        assert_eq!(parse_date("1899-12-31"), Err(InputError::YearOutOfRange));
        assert_eq!(parse_date("10000-01-01"), Err(InputError::DateNotation));
    }

    #[test]
    fn datetimes_within_the_years_in_utc() {
        let t = parse_datetime("2026-01-31T10:30:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-31T09:30:00+00:00");
        assert!(parse_datetime("1900-01-01T00:00:00Z").is_ok());
        assert!(parse_datetime("9999-12-31T23:59:59.999Z").is_ok());
        assert_eq!(parse_datetime("0000-01-01T00:00:00Z"), Err(InputError::YearOutOfRange));
        assert_eq!(parse_datetime("1900-01-01T00:30:00+01:00"), Err(InputError::YearOutOfRange));
        assert_eq!(parse_datetime("9999-12-31T23:30:00-01:00"), Err(InputError::YearOutOfRange));
        assert_eq!(parse_datetime("10000-01-01T00:00:00Z"), Err(InputError::DateTimeNotation));
        assert_eq!(parse_datetime("2026-01-31"), Err(InputError::DateTimeNotation));
    }

    #[test]
    fn texts_without_nul_and_bounded_in_characters() {
        assert!(check_text("Müller", 6).is_ok());
        assert_eq!(check_text("Müller", 5), Err(InputError::TooLong(5)));
        assert!(check_text(&"ü".repeat(200), 200).is_ok(), "characters, not bytes");
        assert_eq!(check_text("a\0b", 200), Err(InputError::Nul));
        assert_eq!(check_text("", 0), Ok(()));
    }
}
