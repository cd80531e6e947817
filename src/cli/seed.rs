//! Synthetic data (being written).
use crate::BoxError;
use crate::db::Db;

pub async fn run(_db: &Db, _workspace: &str, _leads: usize, _seed: u64) -> Result<String, BoxError> {
    Err("seed is not written yet".into())
}
