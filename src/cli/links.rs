//! `closedloop export links`: a mailing's personal tracking links and open pixels, one row per
//! recipient, for a mail tool's merge fields. The recipients are a CSV with a header and a column
//! `email` or `external_id` (the lead's); every input column is kept, and `url` and `pixel_url`
//! are appended. A recipient that is no lead of the workspace gets empty cells and is counted.
use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use entity::{lead, tracking_link};
use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};

use crate::BoxError;
use crate::db::Db;
use crate::domain::spreadsheet::cell;
use crate::store::{self, Scoped};

/// What the export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    /// Recipients that are no lead of the workspace (their cells are empty).
    pub unmatched: u64,
}

/// Leads are looked up this many keys at a time.
const CHUNK: usize = 5_000;

/// Writes the personal links of tracking link `link` (its global ID or number) in workspace
/// `workspace` for every recipient of `recipients`, to `out` or standard output. `public_url` is
/// the server's address as recipients reach it; `sent_at` is when the mailing goes out (a click
/// within a minute of it is taken for a mail scanner's).
pub async fn links(
    db: &Db,
    workspace: &str,
    link: &str,
    recipients: &Path,
    out: Option<&Path>,
    public_url: &str,
    sent_at: DateTime<Utc>,
) -> Result<Written, BoxError> {
    let ws = store::workspace::by_name(&db.conn, workspace)
        .await?
        .ok_or_else(|| format!("no workspace named {workspace:?}"))?;
    let link_id = match link.parse::<i64>() {
        Ok(n) => n,
        Err(_) => crate::graphql::ids::decode(crate::graphql::ids::NodeType::TrackingLink, &link.into())
            .map_err(|_| format!("{link:?} is not a tracking link's ID"))?,
    };
    let link = store::with_id::<tracking_link::Entity>(ws.id, link_id)
        .one(&db.conn)
        .await?
        .ok_or_else(|| format!("workspace {workspace:?} has no tracking link {link_id}"))?;
    let url = url::Url::parse(public_url).map_err(|e| format!("--public-url {public_url:?}: {e}"))?;
    let base = url.as_str().trim_end_matches('/');
    let secret = crate::service::tracking::keys_in(&db.conn, ws.id).await?.secret;

    let mut reader = csv::Reader::from_path(recipients).map_err(|e| format!("{}: {e}", recipients.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let (key_column, by_email) = match (column("email"), column("external_id")) {
        (Some(c), _) => (c, true),
        (None, Some(c)) => (c, false),
        (None, None) => return Err(format!("{}: the header needs a column email or external_id", recipients.display()).into()),
    };
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    let key_of = |r: &csv::StringRecord| {
        let k = r.get(key_column).unwrap_or("").trim();
        if by_email { k.to_lowercase() } else { k.to_owned() }
    };
    let keys: Vec<String> = {
        let mut k: Vec<String> = rows.iter().map(key_of).filter(|k| !k.is_empty()).collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    let key_col = if by_email { lead::Column::Email } else { lead::Column::ExternalId };
    let mut leads: HashMap<String, i64> = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(CHUNK) {
        let found: Vec<(i64, Option<String>)> = lead::Entity::in_workspace(ws.id)
            .filter(store::text_in(&db.conn, key_col, chunk))
            .filter(lead::Column::ErasedAt.is_null())
            .select_only()
            .columns([lead::Column::Id, key_col])
            .into_tuple()
            .all(&db.conn)
            .await?;
        leads.extend(found.into_iter().filter_map(|(id, k)| Some((k?, id))));
    }

    let sink: Box<dyn std::io::Write> = match out {
        Some(path) => Box::new(std::fs::File::create(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = csv::Writer::from_writer(sink);
    let mut header: Vec<&str> = headers.iter().collect();
    header.extend(["url", "pixel_url"]);
    writer.write_record(&header)?;
    let mut written = Written { rows: 0, unmatched: 0 };
    for r in &rows {
        let mut record: Vec<String> = r.iter().map(|c| cell(c).into_owned()).collect();
        match leads.get(&key_of(r)) {
            Some(&lead) => {
                let (click, open) = crate::service::tracking::tokens(&secret, &link, Some(lead), sent_at);
                record.push(format!("{base}/t/c/{click}"));
                record.push(format!("{base}/t/o/{open}.gif"));
            }
            None => {
                written.unmatched += 1;
                record.extend([String::new(), String::new()]);
            }
        }
        writer.write_record(&record)?;
        written.rows += 1;
    }
    writer.flush()?;
    Ok(written)
}
