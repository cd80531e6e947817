//! API keys: one workspace and one role each, stored as SHA-256 hashes.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use entity::api_key;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

use crate::domain::vocab::Role;
use crate::error::AppError;

/// Who is calling: resolved from the API key on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub workspace_id: i64,
    pub role: Role,
    pub key_id: i64,
    /// The user the key speaks for, if it was made for one (`key create --user`).
    pub user_id: Option<i64>,
    /// The request's `X-Change-Source`: the tag its writes carry in the change feed.
    pub source: Option<crate::domain::change::SourceTag>,
}

const KEY_PREFIX: &str = "clk_";

/// `bytes` random bytes from the operating system, as hex text (keys, secrets, nonces).
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0_u8; bytes];
    getrandom::fill(&mut b).expect("the operating system's random source works");
    hex::encode(b)
}

/// A fresh random key (shown once) and the hash that is stored.
pub fn generate_key() -> (String, String) {
    let key = format!("{KEY_PREFIX}{}", random_hex(24));
    let hash = hash_key(&key);
    (key, hash)
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The part of a key that may be shown again to tell keys apart.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(KEY_PREFIX.len() + 6).collect()
}

/// Resolves keys to principals, remembering recent answers for a short time so that a busy
/// dashboard does not cost a key lookup per request. A revoked key stops working within `ttl`.
#[derive(Clone)]
pub struct KeyResolver {
    cache: Arc<RwLock<HashMap<String, (Principal, Instant)>>>,
    ttl: Duration,
}

impl Default for KeyResolver {
    fn default() -> Self {
        Self {
            cache: Arc::default(),
            ttl: Duration::from_secs(30),
        }
    }
}

impl KeyResolver {
    pub async fn resolve(&self, db: &impl ConnectionTrait, key: &str) -> Result<Principal, AppError> {
        let key = key.trim();
        if !key.starts_with(KEY_PREFIX) {
            return Err(AppError::Unauthenticated);
        }
        let hash = hash_key(key);
        if let Some((principal, at)) = self.cache.read().expect("not poisoned").get(&hash)
            && at.elapsed() < self.ttl
        {
            return Ok(*principal);
        }
        let row = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(&hash))
            .filter(api_key::Column::RevokedAt.is_null())
            .one(db)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let role = Role::parse(&row.role).ok_or_else(|| AppError::internal("stored key has an unknown role"))?;
        let principal = Principal {
            workspace_id: row.workspace_id,
            role,
            key_id: row.id,
            user_id: row.user_id,
            source: None,
        };
        let mut cache = self.cache.write().expect("not poisoned");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(hash, (principal, Instant::now()));
        Ok(principal)
    }
}

/// The key from an `Authorization: Bearer ...` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed() {
        let (a, ha) = generate_key();
        let (b, _) = generate_key();
        assert_ne!(a, b);
        assert!(a.starts_with("clk_") && a.len() == 4 + 48);
        assert_eq!(ha, hash_key(&a));
        assert_ne!(ha, a);
        assert_eq!(key_prefix(&a).len(), 10);
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer("Bearer clk_x"), Some("clk_x"));
        assert_eq!(bearer("bearer   clk_x "), Some("clk_x"));
        assert_eq!(bearer("Basic abc"), None);
    }
}
