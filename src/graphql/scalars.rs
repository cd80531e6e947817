//! Our own scalars. async-graphql's built-in Decimal accepts JSON numbers (parsed through f64);
//! ours accepts strings only, so no amount ever passes through a float.
use std::str::FromStr;

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use chrono::{NaiveDate, SecondsFormat, Utc};

/// An exact decimal number, written as a string: `"1234.50"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal(pub rust_decimal::Decimal);

#[Scalar(name = "Decimal")]
/// An exact decimal number written as a JSON string, e.g. "1234.50". Numbers are refused.
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => rust_decimal::Decimal::from_str(s.trim())
                .map(Decimal)
                .map_err(|_| InputValueError::custom(format!("{s:?} is not a decimal number"))),
            _ => Err(InputValueError::custom("Decimal must be a string such as \"1234.50\"")),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// A point in time, RFC 3339 in UTC: `"2026-01-31T09:30:00Z"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime(pub chrono::DateTime<Utc>);

#[Scalar(name = "DateTime")]
/// A point in time in RFC 3339, e.g. "2026-01-31T09:30:00Z". Input offsets are converted to UTC.
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(s.trim())
                .map(|t| DateTime(t.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom(format!("{s:?} is not an RFC 3339 date-time"))),
            _ => Err(InputValueError::custom("DateTime must be an RFC 3339 string")),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

/// A calendar date: `"2026-01-31"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
/// A calendar date in ISO 8601, e.g. "2026-01-31".
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom(format!("{s:?} is not a YYYY-MM-DD date"))),
            _ => Err(InputValueError::custom("Date must be a YYYY-MM-DD string")),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// An exact amount of money in a currency.
#[derive(SimpleObject, Debug, Clone)]
pub struct Money {
    pub amount: Decimal,
    /// ISO 4217 code, e.g. "EUR".
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
    use super::*;

    #[test]
    fn decimal_is_string_only() {
        assert_eq!(Decimal::parse(Value::String("0.10".into())).unwrap().0.to_string(), "0.10");
        assert!(Decimal::parse(Value::Number(1.into())).is_err());
        assert!(Decimal::parse(Value::String("1,5".into())).is_err());
    }

    #[test]
    fn datetime_is_utc() {
        let t = DateTime::parse(Value::String("2026-01-31T10:30:00+01:00".into())).unwrap();
        assert_eq!(t.to_value(), Value::String("2026-01-31T09:30:00Z".into()));
        assert!(DateTime::parse(Value::String("2026-01-31".into())).is_err());
    }
}
