//! Filter values checked against what can match. A stage key, channel or touchpoint type the
//! workspace does not have, or a country that is not an assigned ISO 3166-1 alpha-2 code, is a
//! caller's mistake (`stage: ["NOPE"]`, `country: ["Germany"]`): it is refused with
//! BAD_USER_INPUT naming the allowed values, instead of quietly matching no rows.
use async_graphql::Context;

use crate::domain::vocab::{VOCAB_CHANNEL, VOCAB_TOUCHPOINT_TYPE, normalize_code};
use crate::error::ServiceError;
use crate::graphql::errors::query_result;
use crate::graphql::loaders::{KnownCodes, Loaders};
use crate::service::account::{COUNTRY_HINT, country_code};

/// The list a filter's values must come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// The keys of the workspace's funnel stages (`funnelStages`).
    StageKey,
    /// The workspace's channel vocabulary (`viewer.workspace.channels`).
    Channel,
    /// The workspace's touchpoint types (`viewer.workspace.touchpointTypes`).
    TouchpointType,
}

impl Known {
    fn noun(self) -> &'static str {
        match self {
            Known::StageKey => "stage key",
            Known::Channel => "channel",
            Known::TouchpointType => "touchpoint type",
        }
    }
}

/// Most allowed values a message lists; a vocabulary may grow long.
const LISTED: usize = 40;

/// The error code in `extensions.fields` of a refused value.
const UNKNOWN: &str = "UNKNOWN_VALUE";

/// `given` as the codes they name (case-insensitive; "paid social" is PAID_SOCIAL), each of
/// which the workspace has; the first that it does not have refuses the request.
pub async fn codes(
    ctx: &Context<'_>,
    field: &[&str],
    known: Known,
    given: Option<Vec<String>>,
) -> async_graphql::Result<Option<Vec<String>>> {
    let Some(given) = given else { return Ok(None) };
    if given.is_empty() {
        return Ok(Some(given));
    }
    let all = ctx.data_unchecked::<Loaders>().load_one(KnownCodes).await?.unwrap_or_default();
    let allowed: &[String] = match known {
        Known::StageKey => &all.stage_keys,
        Known::Channel => all.vocabularies.get(VOCAB_CHANNEL).map(Vec::as_slice).unwrap_or_default(),
        Known::TouchpointType => all.vocabularies.get(VOCAB_TOUCHPOINT_TYPE).map(Vec::as_slice).unwrap_or_default(),
    };
    let mut out = Vec::with_capacity(given.len());
    for raw in given {
        match normalize_code(&raw).filter(|c| allowed.contains(c)) {
            Some(code) => out.push(code),
            None => return refuse(field, unknown_message(known, &raw, allowed)),
        }
    }
    Ok(Some(out))
}

/// `given` as upper-case ISO 3166-1 alpha-2 codes; a value that is not an assigned code
/// ("Germany", "DEU", "UK") refuses the request.
pub fn countries(field: &[&str], given: Option<Vec<String>>) -> async_graphql::Result<Option<Vec<String>>> {
    let Some(given) = given else { return Ok(None) };
    let mut out = Vec::with_capacity(given.len());
    for raw in given {
        match country_code(&raw) {
            Some(code) => out.push(code),
            None => return refuse(field, format!("{raw:?} {COUNTRY_HINT}")),
        }
    }
    Ok(Some(out))
}

fn refuse<T>(field: &[&str], message: String) -> async_graphql::Result<T> {
    query_result(Err(ServiceError::invalid(field, UNKNOWN, message)))
}

/// `unknown channel "TV"; this workspace has: CONTENT, DIRECT, ...` with at most `LISTED` of
/// them, and how many more there are.
fn unknown_message(known: Known, raw: &str, allowed: &[String]) -> String {
    let mut m = format!("unknown {} {raw:?}; ", known.noun());
    if allowed.is_empty() {
        m.push_str("this workspace has none");
        return m;
    }
    m.push_str("this workspace has: ");
    m.push_str(&allowed.iter().take(LISTED).map(String::as_str).collect::<Vec<_>>().join(", "));
    if allowed.len() > LISTED {
        m.push_str(&format!(" and {} more", allowed.len() - LISTED));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_allowed_values_and_caps_them() {
        let stages: Vec<String> = ["LEAD", "MQL", "SQL"].map(String::from).to_vec();
        assert_eq!(
            unknown_message(Known::StageKey, "NOPE", &stages),
            r#"unknown stage key "NOPE"; this workspace has: LEAD, MQL, SQL"#
        );
        let many: Vec<String> = (0..45).map(|i| format!("C{i:02}")).collect();
        let m = unknown_message(Known::Channel, "TV", &many);
        assert!(m.ends_with("C38, C39 and 5 more"), "{m}");
        assert!(!m.contains("C40"), "{m}");
        assert_eq!(
            unknown_message(Known::TouchpointType, "X", &[]),
            r#"unknown touchpoint type "X"; this workspace has none"#
        );
    }
}
