//! CSV import (being written).
use std::path::Path;

use crate::BoxError;
use crate::db::Db;

pub async fn run(_db: &Db, _dir: &Path, _workspace: &str) -> Result<String, BoxError> {
    Err("import is not written yet".into())
}
