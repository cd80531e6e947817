//! The demo company (being written).
use crate::BoxError;
use crate::db::Db;

pub const WORKSPACE: &str = "hydraulik-demo";

pub async fn load(_db: &Db) -> Result<Option<String>, BoxError> {
    Err("the demo data is not written yet".into())
}
