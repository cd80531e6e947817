//! The planned read path: a nested page in one statement per level, written out without a
//! resolver per field.
//!
//! The generic path resolves every selected field as a future of its own (Q2 of BENCHMARKS.md,
//! a page of 50 leads with account, stage and 5 touchpoints with their campaign, is some 2,000
//! of them), loads related rows through DataLoaders, decodes whole rows and builds the response
//! field by field. For the reads that clients make most, the resolver of the list or lookup
//! first asks [`lead_page`] or [`lead_object`] for a plan of its selection:
//!
//! 1. [`collect`] reads the selection set as GraphQL's CollectFields does: aliases, `@skip` and
//!    `@include` (with variables), fragment spreads and inline fragments with their type
//!    conditions, and fields selected twice under one response key (merged).
//! 2. [`Level`] turns it into one statement per level from the entity descriptions of
//!    [`describe`]: the selected columns only, to-one objects (`Lead.account`, `Lead.stage`,
//!    `Touchpoint.campaign`) LEFT JOINed into the level's statement, to-many pages
//!    (`Lead.touchpoints(first:)`) as the first or last N rows of every parent in one statement
//!    (PostgreSQL: a LATERAL join over an array of parent IDs; SQLite: UNION ALL arms, one
//!    index range scan each, which measured 3 times faster there than a window function).
//! 3. The rows, decoded by position, are written out as the response value in the order of the
//!    selection, with the generic path's encodings (IDs, cursors, `DateTime`, `Date`, enums).
//!
//! A field that [`describe`] does not know, an argument that does not parse or a directive
//! other than `@skip`/`@include` makes the plan `None`, and the generic resolvers run as before:
//! they give the same answer, and the same errors where the input is wrong. Workspace scoping
//! stays with the callers, which pass the statement of the rows the caller may see; every joined
//! or nested row is taken from the same workspace. The planned fields are plain columns, which
//! every role may read, as on the generic path.
//!
//! `tests/api/planned.rs` runs random selections through both paths and demands the same bytes.
mod collect;
pub mod describe;
mod run;

use std::borrow::Cow;
use std::sync::Mutex;

use async_graphql::parser::types::Field;
use async_graphql::{Context, ContextSelectionSet, OutputType, Positioned, ServerResult, Value, registry};

pub use collect::Env;
pub use run::{Level, ObjectPlan, PagePlan};

/// The result of a field that has a planned path: the generic value, resolved field by field,
/// or the value the plan wrote. The GraphQL type is `T`'s: the schema does not change.
pub enum Planned<T> {
    Generic(T),
    Done(Mutex<Option<Value>>),
}

impl<T> Planned<T> {
    pub fn done(value: Value) -> Self {
        Planned::Done(Mutex::new(Some(value)))
    }
}

impl<T: OutputType> OutputType for Planned<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut registry::Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        match self {
            Planned::Generic(value) => value.resolve(ctx, field).await,
            // A field's value is resolved once; the lock is never contended.
            Planned::Done(value) => Ok(value.lock().ok().and_then(|mut v| v.take()).unwrap_or(Value::Null)),
        }
    }
}

/// Whether the planned path is taken (server setting `--no-planned-reads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    Planned,
    Generic,
}

fn planning(ctx: &Context<'_>) -> bool {
    ctx.data_opt::<Reads>() != Some(&Reads::Generic)
}

/// The plan of a page of `entity` for the connection field being resolved, sorted by
/// `sort_column` (`None`: by ID) and the ID. `None`: not plannable.
pub fn lead_page(ctx: &Context<'_>, sort_column: Option<&'static str>) -> Option<PagePlan> {
    if !planning(ctx) {
        return None;
    }
    let env = Env::of(ctx);
    let sels = env.collect(&[&ctx.item.node.selection_set.node], "LeadConnection")?;
    PagePlan::new(&env, &describe::LEAD, "LeadConnection", "LeadEdge", sort_column, &sels, true)
}

/// The plan of one lead for the lookup field being resolved. `None`: not plannable.
pub fn lead_object(ctx: &Context<'_>) -> Option<ObjectPlan> {
    if !planning(ctx) {
        return None;
    }
    let env = Env::of(ctx);
    let sels = env.collect(&[&ctx.item.node.selection_set.node], describe::LEAD.type_name)?;
    ObjectPlan::new(&env, &describe::LEAD, &sels)
}
