//! The caller's workspace, its vocabularies, and who the caller is.
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};

use crate::domain::handoff::VOCAB_REJECT_REASON;
use crate::domain::vocab::{Action, VOCAB_CHANNEL, VOCAB_COST_CATEGORY, VOCAB_TOUCHPOINT_TYPE};
use crate::graphql::context::ContextExt;
use crate::graphql::enums::Role;
use crate::graphql::errors::{IntoGql, UserError, split};
use crate::graphql::loaders::{Loaders, WorkspaceKey};
use crate::store;

/// One of a workspace's extensible code lists. Every workspace starts with the defaults of
/// each; an ADMIN adds codes with `addVocabularyTerm` (codes are never removed).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum VocabularyKind {
    /// The channels a campaign may have (`Campaign.channel`), e.g. EMAIL, WEBINAR, TRADE_FAIR.
    Channel,
    /// The types a touchpoint may have (`Touchpoint.type`), e.g. EMAIL_OPEN, PAGE_VIEW.
    TouchpointType,
    /// The reasons sales may give when it rejects a handoff.
    RejectReason,
    /// What campaign cost lines pay for.
    CostCategory,
}

impl VocabularyKind {
    fn code(self) -> &'static str {
        match self {
            VocabularyKind::Channel => VOCAB_CHANNEL,
            VocabularyKind::TouchpointType => VOCAB_TOUCHPOINT_TYPE,
            VocabularyKind::RejectReason => VOCAB_REJECT_REASON,
            VocabularyKind::CostCategory => VOCAB_COST_CATEGORY,
        }
    }
}

/// One code of a workspace vocabulary.
#[derive(SimpleObject, Clone)]
pub struct VocabularyTerm {
    /// The code inputs and filters use: SCREAMING_SNAKE_CASE, e.g. PAID_SOCIAL.
    pub code: String,
    /// A name for people, e.g. "Paid social"; the code when none was given.
    pub label: String,
}

pub struct Workspace(entity::workspace::Model);

/// The caller's workspace (one company's data): its name, currency and vocabularies.
#[Object]
impl Workspace {
    /// The workspace's display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// ISO 4217 code, e.g. "EUR": the currency of every Money the API answers unless the
    /// object says otherwise (an opportunity may be in another), and of the amounts inputs give
    /// for budgets, costs and account revenue.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// The channels campaigns may have, by code: the values `CampaignFilterInput.channel` and
    /// `KpiFilterInput.channel` accept.
    async fn channels(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VocabularyTerm>> {
        vocabulary(ctx, self.0.id, VocabularyKind::Channel).await
    }
    /// The types touchpoints may have, by code: the values `recordTouchpoints` and the
    /// touchpoint filter accept.
    async fn touchpoint_types(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VocabularyTerm>> {
        vocabulary(ctx, self.0.id, VocabularyKind::TouchpointType).await
    }
    /// The reason codes a rejected handoff may give, by code.
    async fn reject_reasons(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VocabularyTerm>> {
        vocabulary(ctx, self.0.id, VocabularyKind::RejectReason).await
    }
    /// The categories campaign cost lines may have, by code.
    async fn cost_categories(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<VocabularyTerm>> {
        vocabulary(ctx, self.0.id, VocabularyKind::CostCategory).await
    }
}

async fn vocabulary(ctx: &Context<'_>, ws: i64, kind: VocabularyKind) -> async_graphql::Result<Vec<VocabularyTerm>> {
    let rows = store::workspace::vocabulary(&ctx.db().conn, ws, kind.code()).await.gql()?;
    Ok(rows
        .into_iter()
        .map(|t| VocabularyTerm {
            code: t.code,
            label: t.label,
        })
        .collect())
}

pub struct Viewer;

/// Who is calling: the API key's role and workspace.
#[Object]
impl Viewer {
    /// The role of the API key: what it may change (every role may read).
    async fn role(&self, ctx: &Context<'_>) -> async_graphql::Result<Role> {
        Ok(ctx.principal()?.role.into())
    }
    /// The workspace the key belongs to; every query and mutation works in it alone.
    async fn workspace(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Workspace>> {
        ctx.principal()?;
        Ok(ctx.data_unchecked::<Loaders>().load_one(WorkspaceKey).await?.map(Workspace))
    }
}

#[derive(Default)]
pub struct WorkspaceQuery;

#[Object]
impl WorkspaceQuery {
    /// The caller: its role and workspace. Any role; UNAUTHENTICATED without a valid key.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        ctx.principal()?;
        Ok(Viewer)
    }
}

/// A code to add to one of the workspace's vocabularies.
#[derive(InputObject)]
pub struct AddVocabularyTermInput {
    /// The vocabulary to add to.
    pub kind: VocabularyKind,
    /// The code: letters, digits and underscores, at most 64; case-insensitive, and spaces
    /// and dashes become underscores ("agency fees" is AGENCY_FEES). TAKEN when it exists.
    pub code: String,
    /// A name for people; default: the code.
    pub label: Option<String>,
}

/// The result of `addVocabularyTerm`.
#[derive(SimpleObject)]
pub struct AddVocabularyTermPayload {
    /// The new term; null when `userErrors` is not empty.
    pub term: Option<VocabularyTerm>,
    /// Why nothing was added (INVALID or TAKEN on `input.code`); empty on success.
    pub user_errors: Vec<UserError>,
}

#[derive(Default)]
pub struct WorkspaceMutation;

#[Object]
impl WorkspaceMutation {
    /// Adds a channel, touchpoint type, reject reason or cost category to the workspace's
    /// vocabulary. ADMIN only (FORBIDDEN for other roles).
    async fn add_vocabulary_term(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The vocabulary, the new code and its label.")] input: AddVocabularyTermInput,
    ) -> async_graphql::Result<AddVocabularyTermPayload> {
        let p = ctx.allowed(Action::Administer)?;
        let result = crate::service::vocabulary::add(ctx.db(), p, input.kind.code(), &input.code, input.label).await;
        let (term, user_errors) = split(result)?;
        Ok(AddVocabularyTermPayload {
            term: term.map(|t| VocabularyTerm {
                code: t.code,
                label: t.label,
            }),
            user_errors,
        })
    }
}
