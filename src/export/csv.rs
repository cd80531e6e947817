//! A table as RFC 4180 CSV in UTF-8 (CRLF line ends, a header row of the column names): IDs as
//! global IDs, money as plain decimals ("1234.50"), times as RFC 3339 in UTC as the API writes
//! them, JSON as its text, NULL as an empty cell. Every cell passes through
//! [`spreadsheet::cell`], so no text runs as a formula in a spreadsheet.
use chrono::SecondsFormat;

use super::decimal_text;
use crate::domain::ids::global_id;
use crate::domain::spreadsheet;
use crate::store::export::{Kind, Page, Table, Values};

pub struct Encoder {
    table: &'static Table,
    header: bool,
}

impl Encoder {
    pub fn new(table: &'static Table) -> Self {
        Self { table, header: true }
    }

    /// The rows of a page (after the header row, the first time).
    pub fn page(&mut self, page: &Page) -> Result<Vec<u8>, super::ExportError> {
        let mut w = writer();
        self.write_header(&mut w);
        let mut row: Vec<String> = vec![String::new(); self.table.columns.len()];
        for i in 0..page.rows {
            for ((cell, column), values) in row.iter_mut().zip(self.table.columns).zip(&page.columns) {
                *cell = text(column.kind, values, i);
            }
            // Writing into a Vec<u8> cannot fail.
            let _ = spreadsheet::write_row(&mut w, &row);
        }
        Ok(w.into_inner().unwrap_or_default())
    }

    /// The header row if no page came.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut w = writer();
        self.write_header(&mut w);
        w.into_inner().unwrap_or_default()
    }

    fn write_header(&mut self, w: &mut csv::Writer<Vec<u8>>) {
        if std::mem::replace(&mut self.header, false) {
            let _ = spreadsheet::write_row(w, self.table.columns.iter().map(|c| c.name));
        }
    }
}

fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new())
}

/// Row `i` of a column as a cell ("" for NULL).
fn text(kind: Kind, values: &Values, i: usize) -> String {
    match (kind, values) {
        (Kind::Id(type_name), Values::Int(v)) => v[i].map(|id| global_id(type_name, id)),
        (Kind::Cents, Values::Int(v)) => v[i].map(|x| decimal_text(x, 2)),
        (Kind::Micros, Values::Int(v)) => v[i].map(|x| decimal_text(x, 6)),
        (_, Values::Int(v)) => v[i].map(|x| x.to_string()),
        (_, Values::Float(v)) => v[i].map(|x| x.to_string()),
        (_, Values::Bool(v)) => v[i].map(|x| x.to_string()),
        (_, Values::Text(v)) => v[i].clone(),
        (_, Values::Json(v)) => v[i].as_ref().map(ToString::to_string),
        (_, Values::Time(v)) => v[i].map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        (_, Values::Date(v)) => v[i].map(|d| d.to_string()),
    }
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::export::TABLES;

    #[test]
    fn cells_are_typed_text_and_formulas_are_quoted() {
        let table = TABLES.iter().find(|t| t.name == "cost_lines").unwrap();
        let page = Page {
            rows: 1,
            last_id: 7,
            columns: vec![
                Values::Int(vec![Some(7)]),
                Values::Int(vec![Some(3)]),
                Values::Text(vec![Some("MEDIA".into())]),
                Values::Int(vec![Some(123_450)]),
                Values::Text(vec![Some("EUR".into())]),
                Values::Date(vec![chrono::NaiveDate::from_ymd_opt(2026, 3, 1)]),
                Values::Text(vec![Some("=HYPERLINK(\"x\")".into())]),
                Values::Time(vec![chrono::DateTime::from_timestamp(1_772_323_200, 500_000_000)]),
                Values::Time(vec![None]),
                Values::Int(vec![Some(2)]),
            ],
        };
        let mut e = Encoder::new(table);
        let out = String::from_utf8(e.page(&page).unwrap()).unwrap();
        assert_eq!(
            out,
            "id,campaign_id,category,amount,currency,incurred_on,note,created_at,updated_at,version\r\n\
             Q2FtcGFpZ25Db3N0Ojc=,Q2FtcGFpZ246Mw==,MEDIA,1234.50,EUR,2026-03-01,\"'=HYPERLINK(\"\"x\"\")\",2026-03-01T00:00:00.500Z,,2\r\n"
        );
        assert_eq!(e.finish(), b"");
        assert_eq!(Encoder::new(table).finish().len(), out.find("\r\n").unwrap() + 2);
    }
}
