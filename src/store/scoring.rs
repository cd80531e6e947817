//! Score queries: the scoring matrix and score conditions on leads, as range conditions on the
//! stored time-free activity key (`domain::scoring`).
use chrono::{DateTime, Utc};
use entity::{lead, lead_score};
use sea_orm::sea_query::{Alias, CaseStatement, Cond, Expr, ExprTrait, Func, Query, SelectStatement, SimpleExpr};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QuerySelect, QueryTrait, Select};

use crate::domain::scoring::{Cell, Grade};

/// Which stored rows a score condition may judge by their key: those whose reference time is
/// not after `as_of` (a later touch must not count at `as_of`; such "late" leads are judged in
/// Rust and passed as IDs).
fn judged_by_key(as_of: DateTime<Utc>) -> Cond {
    Cond::any()
        .add(lead_score::Column::ActivityAt.is_null())
        .add(lead_score::Column::ActivityAt.lte(as_of))
}

/// The key condition of one activity band, given the key bounds of bands 1-3.
fn band_condition(band: u8, bounds: [f64; 3]) -> Cond {
    let key = || Expr::col(lead_score::Column::ActivityKey);
    match band {
        1 => Cond::all().add(key().gte(bounds[0])),
        2 => Cond::all().add(key().gte(bounds[1])).add(key().lt(bounds[0])),
        3 => Cond::all().add(key().gte(bounds[2])).add(key().lt(bounds[1])),
        _ => Cond::any().add(key().is_null()).add(key().lt(bounds[2])),
    }
}

/// A condition on leads' scores under one model at one time.
#[derive(Debug, Clone)]
pub struct ScoreFilter {
    pub model_id: i64,
    pub as_of: DateTime<Utc>,
    /// Key bounds of bands 1, 2, 3 at `as_of`.
    pub bounds: [f64; 3],
    pub cells: Option<Vec<Cell>>,
    pub grades: Option<Vec<Grade>>,
    /// The key bound of the minimum activity score.
    pub min_key: Option<f64>,
    /// Leads with touches after `as_of` that meet the condition (judged in Rust).
    pub late: Vec<i64>,
}

impl ScoreFilter {
    /// `leads.id IN (rows judged by key that qualify) OR leads.id IN (late leads that qualify)`.
    pub fn condition(&self, ws: i64) -> SimpleExpr {
        let mut sub = Query::select()
            .column(lead_score::Column::LeadId)
            .from(lead_score::Entity)
            .and_where(lead_score::Column::WorkspaceId.eq(ws))
            .and_where(lead_score::Column::ModelId.eq(self.model_id))
            .cond_where(judged_by_key(self.as_of))
            .to_owned();
        if let Some(grades) = &self.grades {
            sub.and_where(lead_score::Column::Grade.is_in(grades.iter().map(|g| g.as_str())));
        }
        if let Some(cells) = &self.cells {
            let mut any = Cond::any();
            for c in cells {
                any = any.add(
                    Cond::all()
                        .add(lead_score::Column::Grade.eq(c.grade.as_str()))
                        .add(band_condition(c.band, self.bounds)),
                );
            }
            sub.cond_where(any);
        }
        if let Some(k) = self.min_key {
            sub.and_where(Expr::col(lead_score::Column::ActivityKey).gte(k));
        }
        let by_key = lead::Column::Id.in_subquery(sub);
        if self.late.is_empty() {
            by_key
        } else {
            by_key.or(lead::Column::Id.is_in(self.late.iter().copied()))
        }
    }
}

/// Lead counts per cell judged by the stored key alone (rows with touches after the time are
/// the caller's to correct), for the leads `leads` selects (`None`: all).
///
/// For all leads: 16 range counts on the (workspace, model, grade, key) index, one statement:
/// per grade, all rows and the rows at or above each band's bound (cumulative). Counting index
/// ranges is about twice as fast in SQLite as grouping by a computed band. For a subset: one
/// pass over the subset, probing each lead's score row, with the same cumulative sums.
pub async fn matrix(
    db: &impl ConnectionTrait,
    ws: i64,
    model_id: i64,
    bounds: [f64; 3],
    leads: Option<Select<lead::Entity>>,
) -> Result<Vec<(Cell, i64)>, DbErr> {
    let backend = db.get_database_backend();
    // Per grade: [all, >= band 1's bound, >= band 2's, >= band 3's].
    let mut cumulative: Vec<(Grade, [i64; 4])> = Vec::with_capacity(4);
    match leads {
        None => {
            let mut parts = Vec::with_capacity(16);
            let mut values: Vec<sea_orm::Value> = Vec::with_capacity(16 * 4);
            for g in Grade::ALL {
                for bound in [None, Some(bounds[0]), Some(bounds[1]), Some(bounds[2])] {
                    let mut part = "(SELECT COUNT(*) FROM lead_scores WHERE workspace_id = ? AND model_id = ? AND grade = ?".to_owned();
                    values.extend([ws.into(), model_id.into(), g.as_str().into()]);
                    if let Some(b) = bound {
                        part.push_str(" AND activity_key >= ?");
                        values.push(b.into());
                    }
                    part.push(')');
                    parts.push(part);
                }
            }
            let sql = format!("SELECT {}", parts.join(", "));
            let row = db
                .query_one_raw(super::raw::statement(backend, &sql, values))
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("matrix counts".into()))?;
            for (i, g) in Grade::ALL.into_iter().enumerate() {
                let mut n = [0_i64; 4];
                for (j, x) in n.iter_mut().enumerate() {
                    *x = row.try_get_by_index::<i64>(i * 4 + j)?;
                }
                cumulative.push((g, n));
            }
        }
        Some(select) => {
            use lead_score::Column as S;
            let ls = || lead_score::Entity;
            let key = || Expr::col((ls(), S::ActivityKey));
            let at_least = |b: f64| Func::sum(CaseStatement::new().case(key().gte(b), 1).finally(0));
            let ids = select.select_only().column(lead::Column::Id).into_query();
            let subset = Alias::new("subset");
            // Driven from the subset: each of its leads is one probe of (workspace, model, lead).
            // Left to itself, SQLite walks every score row of the model in grade order (for the
            // GROUP BY) and tests each against the subset: 3 times slower for a persona of a
            // sixth of the leads. A CROSS JOIN is how SQLite is told the order; PostgreSQL plans
            // it as the inner join it is.
            let q: SelectStatement = Query::select()
                .expr_as(Expr::col((ls(), S::Grade)), Alias::new("grade"))
                .expr_as(Func::count(Expr::col((ls(), S::LeadId))), Alias::new("n"))
                .expr_as(at_least(bounds[0]), Alias::new("n1"))
                .expr_as(at_least(bounds[1]), Alias::new("n2"))
                .expr_as(at_least(bounds[2]), Alias::new("n3"))
                .from_subquery(ids, subset.clone())
                .cross_join(ls())
                .and_where(Expr::col((ls(), S::WorkspaceId)).eq(ws))
                .and_where(Expr::col((ls(), S::ModelId)).eq(model_id))
                .and_where(Expr::col((ls(), S::LeadId)).equals((subset, lead::Column::Id)))
                .group_by_col((ls(), S::Grade))
                .to_owned();
            for row in db.query_all_raw(backend.build(&q)).await? {
                let grade: String = row.try_get("", "grade")?;
                // SUM is NUMERIC on PostgreSQL and may be NULL over no rows.
                let sum = |c: &str| -> Result<i64, DbErr> {
                    Ok(row
                        .try_get::<Option<i64>>("", c)
                        .or_else(|_| {
                            row.try_get::<Option<rust_decimal::Decimal>>("", c)
                                .map(|d| d.and_then(|d| d.try_into().ok()))
                        })?
                        .unwrap_or(0))
                };
                if let Some(g) = Grade::parse(&grade) {
                    cumulative.push((g, [sum("n")?, sum("n1")?, sum("n2")?, sum("n3")?]));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(16);
    for (grade, [all, b1, b2, b3]) in cumulative {
        for (band, n) in [(1, b1), (2, b2 - b1), (3, b3 - b2), (4, all - b3)] {
            out.push((Cell { grade, band }, n));
        }
    }
    Ok(out)
}

/// Stored rows of a model whose reference time is after `as_of` (their leads have touches
/// after it), optionally only for some leads.
pub async fn late_rows(db: &impl ConnectionTrait, ws: i64, model_id: i64, as_of: DateTime<Utc>) -> Result<Vec<lead_score::Model>, DbErr> {
    use sea_orm::{EntityTrait, QueryFilter};
    lead_score::Entity::find()
        .filter(lead_score::Column::WorkspaceId.eq(ws))
        .filter(lead_score::Column::ModelId.eq(model_id))
        .filter(lead_score::Column::ActivityAt.gt(as_of))
        .all(db)
        .await
}
