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

/// Lead counts per cell of the rows judged by key, for the leads `leads` selects (`None`: all).
pub async fn matrix(
    db: &impl ConnectionTrait,
    ws: i64,
    model_id: i64,
    as_of: DateTime<Utc>,
    bounds: [f64; 3],
    leads: Option<Select<lead::Entity>>,
) -> Result<Vec<(Cell, i64)>, DbErr> {
    let key = || Expr::col(lead_score::Column::ActivityKey);
    let band = CaseStatement::new()
        .case(key().gte(bounds[0]), 1)
        .case(key().gte(bounds[1]), 2)
        .case(key().gte(bounds[2]), 3)
        .finally(4);
    let mut q: SelectStatement = Query::select()
        .column(lead_score::Column::Grade)
        .expr_as(band, Alias::new("band"))
        .expr_as(Func::count(Expr::col(lead_score::Column::LeadId)), Alias::new("n"))
        .from(lead_score::Entity)
        .and_where(lead_score::Column::WorkspaceId.eq(ws))
        .and_where(lead_score::Column::ModelId.eq(model_id))
        .cond_where(judged_by_key(as_of))
        .group_by_col(lead_score::Column::Grade)
        .add_group_by([Expr::col(Alias::new("band"))])
        .to_owned();
    if let Some(select) = leads {
        let ids = select.select_only().column(lead::Column::Id).into_query();
        q.and_where(lead_score::Column::LeadId.in_subquery(ids));
    }
    let stmt = db.get_database_backend().build(&q);
    let mut out = Vec::new();
    for row in db.query_all_raw(stmt).await? {
        let grade: String = row.try_get("", "grade")?;
        let band: i32 = row.try_get("", "band")?;
        let n: i64 = row.try_get("", "n")?;
        if let Some(grade) = Grade::parse(&grade) {
            out.push((Cell { grade, band: band as u8 }, n));
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
