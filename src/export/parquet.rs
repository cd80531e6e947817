//! A table as Parquet: the Arrow schema of its description (IDs and text as UTF-8 strings, money
//! as DECIMAL(18,2) from the integer cents, times as UTC microsecond timestamps, days as DATE),
//! one record batch per page, Snappy-compressed row groups of [`ROW_GROUP_ROWS`] rows. The
//! writer's sink keeps what it is given until [`Encoder::page`] takes it, so the bytes of each
//! finished row group leave as soon as it is written.
use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::{ExportError, ROW_GROUP_ROWS};
use crate::domain::ids::write_global_id;
use crate::store::export::{Column, Kind, Page, Table, Values};

/// Digits of a money (and conversions) column: a DECIMAL(18, s) is a 64-bit integer in Parquet.
const PRECISION: u8 = 18;

/// The bytes the Parquet writer has written and no one has taken yet.
#[derive(Default)]
struct Sink(Vec<u8>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct Encoder {
    table: &'static Table,
    schema: SchemaRef,
    /// `None` once finished.
    writer: Option<ArrowWriter<Sink>>,
}

impl Encoder {
    pub fn new(table: &'static Table) -> Result<Self, ExportError> {
        let schema = Arc::new(schema(table));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("closedloop {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(Sink::default(), schema.clone(), Some(props))?;
        Ok(Self {
            table,
            schema,
            writer: Some(writer),
        })
    }

    /// Adds a page; the bytes of the row groups it completed.
    pub fn page(&mut self, page: &Page) -> Result<Vec<u8>, ExportError> {
        let arrays = self
            .table
            .columns
            .iter()
            .zip(&page.columns)
            .map(|(c, v)| array(self.table.name, c, v))
            .collect::<Result<Vec<ArrayRef>, ExportError>>()?;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        let writer = self.writer.as_mut().ok_or_else(finished)?;
        writer.write(&batch)?;
        Ok(std::mem::take(&mut writer.inner_mut().0))
    }

    /// The last row group and the footer.
    pub fn finish(&mut self) -> Result<Vec<u8>, ExportError> {
        let writer = self.writer.take().ok_or_else(finished)?;
        Ok(writer.into_inner()?.0)
    }
}

fn finished() -> ExportError {
    ExportError::Broken("the Parquet file is finished")
}

/// The Arrow schema of a table's file.
pub fn schema(table: &Table) -> Schema {
    Schema::new(
        table
            .columns
            .iter()
            .map(|c| Field::new(c.name, data_type(c.kind), c.nullable))
            .collect::<Vec<Field>>(),
    )
}

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Id(_) | Kind::Text | Kind::Json => DataType::Utf8,
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Cents => DataType::Decimal128(PRECISION, 2),
        Kind::Micros => DataType::Decimal128(PRECISION, 6),
        Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Kind::Date => DataType::Date32,
    }
}

/// The Arrow array of one column of a page.
fn array(table: &'static str, c: &Column, values: &Values) -> Result<ArrayRef, ExportError> {
    let wrong = || ExportError::Db(sea_orm::DbErr::Type(format!("{table}.{}: values of another kind", c.name)));
    Ok(match (c.kind, values) {
        (Kind::Id(type_name), Values::Int(ids)) => {
            let mut b = StringBuilder::with_capacity(ids.len(), ids.len() * 16);
            let mut buf = Vec::with_capacity(32);
            for id in ids {
                match id {
                    Some(id) => {
                        buf.clear();
                        write_global_id(&mut buf, type_name, *id);
                        b.append_value(std::str::from_utf8(&buf).expect("base64 is ASCII"));
                    }
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        (Kind::Int, Values::Int(v)) => Arc::new(Int64Array::from(v.clone())),
        (Kind::Cents, Values::Int(v)) => Arc::new(decimals(table, c.name, v, 2)?),
        (Kind::Micros, Values::Int(v)) => Arc::new(decimals(table, c.name, v, 6)?),
        (Kind::Float, Values::Float(v)) => Arc::new(Float64Array::from(v.clone())),
        (Kind::Bool, Values::Bool(v)) => Arc::new(BooleanArray::from(v.clone())),
        (Kind::Text, Values::Text(v)) => Arc::new(v.iter().map(Option::as_deref).collect::<StringArray>()),
        (Kind::Json, Values::Json(v)) => Arc::new(v.iter().map(|j| j.as_ref().map(|j| j.to_string())).collect::<StringArray>()),
        (Kind::Time, Values::Time(v)) => Arc::new(
            v.iter()
                .map(|t| t.map(|t| t.timestamp_micros()))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ),
        (Kind::Date, Values::Date(v)) => Arc::new(v.iter().map(|d| d.map(days_since_epoch)).collect::<Date32Array>()),
        _ => return Err(wrong()),
    })
}

/// Integers of minor units as DECIMAL(18, `scale`): the same integers, read with `scale`
/// places; one beyond 18 digits is refused rather than written wrong.
fn decimals(table: &'static str, column: &'static str, v: &[Option<i64>], scale: u8) -> Result<Decimal128Array, ExportError> {
    const LIMIT: i64 = 999_999_999_999_999_999;
    if let Some(&value) = v.iter().flatten().find(|x| !(-LIMIT..=LIMIT).contains(*x)) {
        return Err(ExportError::TooLarge {
            table,
            column,
            value,
            scale: u32::from(scale),
        });
    }
    Ok(v.iter()
        .map(|x| x.map(i128::from))
        .collect::<Decimal128Array>()
        .with_precision_and_scale(PRECISION, scale as i8)?)
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("a day")).num_days() as i32
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;

    use super::*;

    #[test]
    fn money_is_decimal_18_2_of_the_cents() {
        let c = Column {
            name: "amount",
            sql: "t.amount_minor",
            kind: Kind::Cents,
            nullable: true,
            personal: false,
            doc: "",
        };
        let a = array("t", &c, &Values::Int(vec![Some(123_450), None, Some(-5)])).unwrap();
        let a = a.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(a.data_type(), &DataType::Decimal128(18, 2));
        assert_eq!(a.value_as_string(0), "1234.50");
        assert!(a.is_null(1));
        assert_eq!(a.value_as_string(2), "-0.05");
        let too_large = array("t", &c, &Values::Int(vec![Some(1_000_000_000_000_000_000)])).unwrap_err();
        assert!(
            too_large
                .to_string()
                .contains("t.amount: 1000000000000000000 does not fit DECIMAL(18,2)")
        );
    }

    #[test]
    fn days_count_from_1970() {
        assert_eq!(days_since_epoch(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), 1);
        assert_eq!(days_since_epoch(NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()), -1);
    }
}
