//! Our own scalars. async-graphql's built-in Decimal accepts JSON numbers (parsed through f64);
//! ours accepts strings only, so no amount ever passes through a float. Each parses strictly
//! (`domain::input`: plain decimals, zero-padded dates, years 1900 to 9999) and says so in
//! `is_valid` too, so that validation refuses a bad value with the argument path named
//! (`Invalid value for argument "input.amount", expected type "Decimal"`) before anything runs.
use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use chrono::{NaiveDate, SecondsFormat, Utc};

use crate::domain::input::{self, InputError};

/// The value's text, parsed by `parse`; the error names the value and what was wrong with it.
fn parse_with<T, S: async_graphql::InputType>(
    value: &Value,
    parse: fn(&str) -> Result<T, InputError>,
    wrap: fn(T) -> S,
    kind: &str,
) -> InputValueResult<S> {
    match value {
        Value::String(s) => parse(s).map(wrap).map_err(|e| InputValueError::custom(format!("{s:?} {e}"))),
        _ => Err(InputValueError::custom(format!("{kind} must be a string"))),
    }
}

/// An exact decimal number, written as a string: `"1234.50"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal(pub rust_decimal::Decimal);

#[Scalar(name = "Decimal")]
/// An exact decimal number written as a JSON string in plain notation, e.g. "1234.50" or "-3":
/// an optional minus, digits, optionally a point and digits; at most 28 digits in all. Numbers,
/// exponents ("1e3"), a leading "+" and spaces are refused.
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        parse_with(&value, input::parse_decimal, Decimal, "Decimal")
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(s) if input::parse_decimal(s).is_ok())
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// A point in time, RFC 3339 in UTC: `"2026-01-31T09:30:00Z"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime(pub chrono::DateTime<Utc>);

#[Scalar(name = "DateTime")]
/// A point in time in RFC 3339, e.g. "2026-01-31T09:30:00Z", in the years 1900 to 9999 (UTC).
/// Input offsets are converted to UTC.
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        parse_with(&value, input::parse_datetime, DateTime, "DateTime")
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(s) if input::parse_datetime(s).is_ok())
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

/// Appends `t` as the `DateTime` scalar writes it, as a JSON string, without chrono's
/// formatting machinery (the planned read path writes hundreds per response). Years outside
/// 0 to 9999 and leap seconds take chrono's way.
pub fn write_datetime(out: &mut Vec<u8>, t: &chrono::DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    let nanos = t.nanosecond();
    let year = t.year();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        out.push(b'"');
        out.extend_from_slice(t.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes());
        out.push(b'"');
        return;
    }
    out.push(b'"');
    {
        let mut put = |n: u32, width: usize, after: u8| {
            let mut buf = [0u8; 9];
            let mut n = n;
            for i in (0..width).rev() {
                buf[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
            out.extend_from_slice(&buf[..width]);
            if after != 0 {
                out.push(after);
            }
        };
        put(year as u32, 4, b'-');
        put(t.month(), 2, b'-');
        put(t.day(), 2, b'T');
        put(t.hour(), 2, b':');
        put(t.minute(), 2, b':');
        put(t.second(), 2, 0);
        if nanos != 0 {
            put(0, 0, b'.');
            if nanos.is_multiple_of(1_000_000) {
                put(nanos / 1_000_000, 3, 0);
            } else if nanos.is_multiple_of(1_000) {
                put(nanos / 1_000, 6, 0);
            } else {
                put(nanos, 9, 0);
            }
        }
    }
    out.extend_from_slice(b"Z\"");
}

/// A calendar date: `"2026-01-31"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
/// A calendar date written YYYY-MM-DD (zero-padded), e.g. "2026-01-31", in the years 1900 to 9999.
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        parse_with(&value, input::parse_date, Date, "Date")
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(s) if input::parse_date(s).is_ok())
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// An exact amount of money in a currency. Never computed through floating point: sums are
/// exact, and a derived figure (a ratio of money, a cost per lead) is rounded once to the cent,
/// half away from zero.
#[derive(SimpleObject, Debug, Clone)]
pub struct Money {
    /// The amount as a Decimal string in `currency`, to the cent ("1234.50", "-20.00"); negative
    /// only where a field says so (a correcting cost line, a forecast shortfall).
    pub amount: Decimal,
    /// ISO 4217 code, e.g. "EUR": the workspace currency unless the object has its own
    /// (an opportunity, a campaign).
    pub currency: String,
}

impl Money {
    pub fn from_minor(minor: i64, currency: &str) -> Self {
        Self {
            amount: Decimal(crate::domain::money::from_minor(minor)),
            currency: currency.to_owned(),
        }
    }
}

impl From<chrono::DateTime<Utc>> for DateTime {
    fn from(t: chrono::DateTime<Utc>) -> Self {
        DateTime(t)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn written_datetimes_are_chronos() {
        use chrono::TimeZone;
        let base = Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap();
        let odd = [
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(-5, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
        ];
        let nanos = [0, 1, 999, 1_000, 120_000, 1_000_000, 500_000_000, 999_999_999, 123_456_789];
        for t in odd
            .into_iter()
            .chain(nanos.iter().map(|n| base + chrono::TimeDelta::nanoseconds(*n)))
        {
            let mut out = Vec::new();
            write_datetime(&mut out, &t);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&DateTime(t).to_value()).unwrap()
            );
        }
    }

    use super::*;

    #[test]
    fn decimal_is_string_only() {
        assert_eq!(Decimal::parse(Value::String("0.10".into())).unwrap().0.to_string(), "0.10");
        assert!(Decimal::parse(Value::Number(1.into())).is_err());
        assert!(Decimal::parse(Value::String("1,5".into())).is_err());
        for bad in ["1e3", "1E2", "+1"] {
            assert!(Decimal::parse(Value::String(bad.into())).is_err(), "{bad}");
            assert!(!Decimal::is_valid(&Value::String(bad.into())), "{bad}");
        }
    }

    #[test]
    fn dates_are_zero_padded_and_within_the_years() {
        assert!(Date::is_valid(&Value::String("2025-01-01".into())));
        assert!(!Date::is_valid(&Value::String("2025-1-1".into())));
        assert!(!Date::is_valid(&Value::String("0000-01-01".into())));
        assert!(!DateTime::is_valid(&Value::String("0000-01-01T00:00:00Z".into())));
        assert!(!DateTime::is_valid(&Value::String("10000-01-01T00:00:00Z".into())));
        assert!(!Date::is_valid(&Value::Number(20250101.into())));
    }

    #[test]
    fn datetime_is_utc() {
        let t = DateTime::parse(Value::String("2026-01-31T10:30:00+01:00".into())).unwrap();
        assert_eq!(t.to_value(), Value::String("2026-01-31T09:30:00Z".into()));
        assert!(DateTime::parse(Value::String("2026-01-31".into())).is_err());
    }
}
