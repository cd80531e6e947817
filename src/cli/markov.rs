//! `closedloop markov-paths`: MARKOV's journeys of a range written as ChannelAttribution's path
//! table (so the reference package can run on exactly the same paths), and the exact solver
//! timed on them. Both tables are CSV with formula-like cells prefixed (`domain::spreadsheet`).
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::BoxError;
use crate::db::Db;
use crate::domain::markov;
use crate::domain::money::from_minor;
use crate::domain::spreadsheet;
use crate::service::attribution::{self as service, Grouping, SourceChoice};
use crate::store;

pub struct Args<'a> {
    pub workspace: &'a str,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub grouping: Grouping,
    pub lookback_days: i64,
    pub out: &'a Path,
    pub repeat: usize,
}

/// Writes the path table, solves `repeat` times, and returns a report: the timings and, per
/// key, conversions, revenue and removal effects (sorted by key, as the reference script prints).
pub async fn run(db: &Db, a: Args<'_>) -> Result<String, BoxError> {
    let ws = store::workspace::by_name(&db.conn, a.workspace)
        .await?
        .ok_or_else(|| format!("no workspace {:?}", a.workspace))?;
    let q = service::Query {
        from: a.from,
        to: a.to,
        grouping: a.grouping,
        lookback_days: a.lookback_days,
        currency: None,
        source: SourceChoice::Compute,
    };
    let started = Instant::now();
    let j = service::journeys(&db.conn, ws.id, &q, &ws.currency).await?;
    let read = started.elapsed();
    let label = |k: usize| j.keys[k].label();

    // path -> (conversions, nulls, value in minor units), consecutive repeats collapsed as
    // both solvers do.
    let mut table: BTreeMap<String, (u64, u64, i64)> = BTreeMap::new();
    for journey in &j.journeys {
        let mut names: Vec<String> = Vec::new();
        for &k in &journey.keys {
            let name = label(k);
            if names.last() != Some(&name) {
                names.push(name);
            }
        }
        if names.is_empty() {
            continue;
        }
        let e = table.entry(names.join(" > ")).or_default();
        match journey.conversion {
            Some(v) => {
                e.0 += 1;
                e.2 += v;
            }
            None => e.1 += 1,
        }
    }
    let mut csv = csv::Writer::from_writer(Vec::new());
    spreadsheet::write_row(&mut csv, ["path", "total_conversions", "total_null", "total_conversion_value"])?;
    for (path, (conv, null, value)) in &table {
        spreadsheet::write_row(
            &mut csv,
            [path.clone(), conv.to_string(), null.to_string(), from_minor(*value).to_string()],
        )?;
    }
    std::fs::write(a.out, csv.into_inner().map_err(|e| e.to_string())?)?;

    let mut times = Vec::with_capacity(a.repeat.max(1));
    let mut result = None;
    for _ in 0..a.repeat.max(1) {
        let t = Instant::now();
        result = markov::attribute(j.keys.len(), &j.journeys);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let mut report = format!(
        "{} journeys ({} converting) over {} keys, {} distinct paths written to {}\n\
         read from the database in {:.1} ms; exact solve min {:.2} ms, median {:.2} ms over {} runs\n",
        j.journeys.len(),
        j.journeys.iter().filter(|x| x.conversion.is_some()).count(),
        j.keys.len(),
        table.len(),
        a.out.display(),
        read.as_secs_f64() * 1e3,
        times[0] * 1e3,
        times[times.len() / 2] * 1e3,
        times.len(),
    );
    if let Some(m) = result {
        let mut csv = csv::Writer::from_writer(Vec::new());
        spreadsheet::write_row(
            &mut csv,
            [
                "key",
                "total_conversions",
                "total_conversion_value",
                "removal_effects_conversion",
                "removal_effects_conversion_value",
            ],
        )?;
        let mut rows: Vec<(String, usize)> = (0..j.keys.len()).map(|k| (label(k), k)).collect();
        rows.sort();
        for (name, k) in rows {
            spreadsheet::write_row(
                &mut csv,
                [
                    name,
                    rust_decimal::Decimal::new(m.conversion_micros[k], 6).to_string(),
                    from_minor(m.revenue_minor[k]).to_string(),
                    format!("{:.10}", m.removal_effects[k]),
                    format!("{:.10}", m.value_removal_effects[k]),
                ],
            )?;
        }
        report.push_str(&String::from_utf8(csv.into_inner().map_err(|e| e.to_string())?)?);
    }
    Ok(report)
}
