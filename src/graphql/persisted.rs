//! Apollo's automatic persisted queries: a client sends the SHA-256 of its query text instead of
//! the text (`extensions: {persistedQuery: {version: 1, sha256Hash}}`). A hash the server does
//! not know is answered with PERSISTED_QUERY_NOT_FOUND; the client then sends hash and text
//! once, which registers the text once it has passed the checks every query passes.
//!
//! Texts are kept as the parsed documents are ([`Bounded`]): at most 64 KiB each and 4 MiB in
//! all. They are shared by every workspace, as the parsed documents are: a text holds no data,
//! and a hash is known only to whoever knows its text.
use std::sync::Arc;

use async_graphql::{Request, ServerError, Value};
use sha2::{Digest, Sha256};

use crate::graphql::errors::coded;
use crate::graphql::limits::Bounded;

const KEPT_TEXT_BYTES: usize = 4 * 1024 * 1024;
const MAX_KEPT_TEXT_BYTES: usize = 64 * 1024;

type Hash = [u8; 32];

pub struct PersistedQueries {
    texts: Bounded<Hash, Arc<str>>,
}

impl Default for PersistedQueries {
    fn default() -> Self {
        Self {
            texts: Bounded::new(KEPT_TEXT_BYTES, MAX_KEPT_TEXT_BYTES),
        }
    }
}

impl PersistedQueries {
    /// Takes the request's `persistedQuery` extension, if any: puts in the text of a known hash,
    /// or checks a text sent with its hash. `Some(hash)`: register the text under `hash` once the
    /// request has passed its checks.
    pub fn resolve(&self, request: &mut Request) -> Result<Option<Hash>, ServerError> {
        let Some(extension) = request.extensions.0.remove("persistedQuery") else {
            return Ok(None);
        };
        let hash = parse(&extension)?;
        if !request.query.is_empty() {
            if Sha256::digest(request.query.as_bytes()).as_slice() != hash {
                return Err(coded(
                    "BAD_USER_INPUT",
                    "persistedQuery.sha256Hash is not the SHA-256 of the query text",
                ));
            }
            return Ok(Some(hash));
        }
        match self.texts.get(&hash) {
            Some(text) => {
                request.query = text.to_string();
                Ok(None)
            }
            None => Err(coded(
                "PERSISTED_QUERY_NOT_FOUND",
                "PersistedQueryNotFound: send the query text with its hash once",
            )),
        }
    }

    pub fn register(&self, hash: Hash, text: &str) {
        self.texts.keep(hash, text.len(), text.into());
    }
}

/// `{version: 1, sha256Hash: "<64 hex digits>"}`: the hash's bytes.
fn parse(extension: &Value) -> Result<Hash, ServerError> {
    let invalid = || {
        coded(
            "BAD_USER_INPUT",
            "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": \"<64 hex digits>\"}",
        )
    };
    let Value::Object(fields) = extension else { return Err(invalid()) };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(Value::Number(_)) => {
            return Err(coded("BAD_USER_INPUT", "only version 1 of persisted queries is supported"));
        }
        _ => return Err(invalid()),
    }
    let Some(Value::String(hex)) = fields.get("sha256Hash") else {
        return Err(invalid());
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let mut hash = [0_u8; 32];
    for (byte, pair) in hash.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let digits = std::str::from_utf8(pair).map_err(|_| invalid())?;
        *byte = u8::from_str_radix(digits, 16).map_err(|_| invalid())?;
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use async_graphql::{Name, Request, Value};

    use super::*;

    const TEXT: &str = "{ viewer { role } }";

    fn sha256(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    fn request(query: &str, version: i32, hash: &str) -> Request {
        let mut r = Request::new(query);
        let mut ext = async_graphql::indexmap::IndexMap::new();
        ext.insert(Name::new("version"), Value::from(version));
        ext.insert(Name::new("sha256Hash"), Value::from(hash));
        r.extensions.0.insert("persistedQuery".into(), Value::Object(ext));
        r
    }

    fn code(e: ServerError) -> String {
        e.extensions
            .and_then(|x| x.get("code").cloned())
            .map(|c| c.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn an_unknown_hash_is_not_found_until_its_text_is_registered() {
        let kept = PersistedQueries::default();
        let e = kept.resolve(&mut request("", 1, &sha256(TEXT))).unwrap_err();
        assert_eq!(code(e), "\"PERSISTED_QUERY_NOT_FOUND\"");

        let mut with_text = request(TEXT, 1, &sha256(TEXT));
        let hash = kept.resolve(&mut with_text).unwrap().expect("to register");
        kept.register(hash, &with_text.query);

        // Upper-case digits name the same hash.
        let mut by_hash = request("", 1, &sha256(TEXT).to_uppercase());
        assert_eq!(kept.resolve(&mut by_hash).unwrap(), None);
        assert_eq!(by_hash.query, TEXT);
        assert!(by_hash.extensions.0.is_empty());
    }

    #[test]
    fn a_text_must_match_its_hash_and_the_extension_its_form() {
        let kept = PersistedQueries::default();
        let e = kept.resolve(&mut request(TEXT, 1, &sha256("{ other }"))).unwrap_err();
        assert!(e.message.contains("not the SHA-256"), "{}", e.message);
        let e = kept.resolve(&mut request("", 2, &sha256(TEXT))).unwrap_err();
        assert!(e.message.contains("version 1"), "{}", e.message);
        for bad in [
            "",
            "zz",
            &"g".repeat(64),
            &"+f".repeat(32),
            &sha256(TEXT)[..62],
            "é".repeat(32).as_str(),
        ] {
            let e = kept.resolve(&mut request("", 1, bad)).unwrap_err();
            assert_eq!(code(e), "\"BAD_USER_INPUT\"", "{bad}");
        }
        // Without the extension, nothing changes.
        let mut plain = Request::new(TEXT);
        assert_eq!(kept.resolve(&mut plain).unwrap(), None);
        assert_eq!(plain.query, TEXT);
    }
}
