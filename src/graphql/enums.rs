//! GraphQL enums mirroring the domain's closed enumerations, and `CostCategory`, which was one
//! and is now a workspace vocabulary.
use async_graphql::{Enum, InputValueError, InputValueResult, Scalar, ScalarType, Value};

use crate::domain::vocab;

macro_rules! mirror {
    ($(#[$m:meta])* $name:ident => $domain:path { $($(#[$vm:meta])* $v:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl From<$name> for $domain {
            fn from(v: $name) -> Self { match v { $($name::$v => <$domain>::$v),+ } }
        }

        impl From<$domain> for $name {
            fn from(v: $domain) -> Self { match v { $(<$domain>::$v => $name::$v),+ } }
        }

        impl $name {
            /// From the stored string; unknown values (never written by us) read as the first.
            pub fn from_db(s: &str) -> Self {
                <$domain>::parse(s).map(Into::into).unwrap_or(mirror!(@first $($name::$v),+))
            }
        }
    };
    (@first $first:expr $(, $rest:expr)*) => { $first };
}

mirror!(
    /// What an API key may do. Every role reads the whole workspace; the roles differ in what
    /// they may change (FORBIDDEN otherwise).
    Role => vocab::Role {
        /// Everything, including GDPR erasure, users, vocabularies, workspace settings, attribution
        /// model settings, the funnel, routing rules and webhooks.
        Admin,
        /// Leads and accounts, campaigns and their costs, touchpoints, personas, scoring models,
        /// and handing leads to sales.
        Marketing,
        /// Leads and accounts, opportunities, and answering handoffs (accept, reject, recycle,
        /// reassign).
        Sales,
        /// Read-only: queries and subscriptions, no mutation.
        Analyst,
    }
);
mirror!(
    /// Whether a contact or account already buys from you. Set by the caller (upsert, update,
    /// import); not derived from deals or from the funnel stage.
    LifecycleStatus => vocab::LifecycleStatus {
        /// Not a customer (yet).
        Lead,
        /// Became a customer recently.
        NewCustomer,
        /// A customer of long standing.
        ExistingCustomer,
    }
);
mirror!(
    /// The marketing goal of a campaign.
    CampaignKind => vocab::CampaignKind {
        /// Win new leads and customers.
        Acquisition,
        /// Keep leads engaged until they are ready to buy.
        Nurture,
        /// Help new customers start.
        Onboarding,
        /// Sell customers another product.
        CrossSell,
        /// Sell customers a larger or higher edition.
        Upsell,
        /// Keep customers.
        Loyalty,
    }
);
mirror!(
    /// Where a campaign stands. Set by the caller; KPI and attribution reports count a
    /// campaign whatever its status.
    CampaignStatus => vocab::CampaignStatus {
        /// Not started.
        Planned,
        /// Running.
        Active,
        /// Ran to its end.
        Completed,
        /// Stopped before its end.
        Cancelled,
    }
);
mirror!(
    /// Where a deal stands.
    OpportunityStatus => vocab::OpportunityStatus {
        /// Not decided yet.
        Open,
        /// Closed and won: its amount is revenue for attribution and the KPIs.
        Won,
        /// Closed and lost.
        Lost,
    }
);

/// A code of the workspace's cost-category vocabulary (`viewer.workspace.costCategories`), e.g.
/// MEDIA or AGENCY_FEES. Sent and answered as a string; a bare name (`category: MEDIA`, as when
/// this was an enum) is accepted too, so queries written then still work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostCategory(pub String);

/// A code of the workspace's cost-category vocabulary (viewer.workspace.costCategories), e.g.
/// MEDIA: a string, or a bare name as when this was an enum.
#[Scalar(name = "CostCategory")]
impl ScalarType for CostCategory {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(CostCategory(s)),
            Value::Enum(name) => Ok(CostCategory(name.to_string())),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// The outcome of closing an opportunity.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    /// The deal was won (status WON).
    Won,
    /// The deal was lost (status LOST).
    Lost,
}

mirror!(
    /// Where a handoff stands: waiting for sales, or answered.
    HandoffStatus => crate::domain::handoff::HandoffStatus {
        /// Waiting for sales to answer; the lead is in MQL. A lead has at most one.
        Pending,
        /// Sales took the lead: it moved to SQL and the handoff's owner became its owner.
        Accepted,
        /// Sales turned the lead down with a reason code: it moved to DISQUALIFIED.
        Rejected,
        /// Sales sent the lead back with feedback: it moved to NURTURE.
        Recycled,
    }
);
mirror!(
    /// What happened to a handoff.
    HandoffEventKind => crate::domain::handoff::EventKind {
        /// A lead was handed to sales (by `handOffLead` or automatically by the default
        /// scoring model); the handoff is PENDING.
        Created,
        /// Sales accepted the handoff.
        Accepted,
        /// Sales rejected the handoff.
        Rejected,
        /// Sales recycled the handoff.
        Recycled,
        /// A pending handoff got another owner (`reassignHandoff`).
        Reassigned,
    }
);
mirror!(
    /// A channel a lead can be contacted on (reach): its contact data is present and its
    /// consent (the key in `Lead.consents`, e.g. "EMAIL") is exactly `true`.
    ReachChannel => crate::domain::reach::ReachChannel {
        /// E-mail (consent key EMAIL), unless the address bounced or the lead unsubscribed.
        Email,
        /// Phone (consent key PHONE).
        Phone,
        /// LinkedIn (consent key LINKEDIN).
        Linkedin,
        /// Twitter (consent key TWITTER).
        Twitter,
        /// Facebook (consent key FACEBOOK).
        Facebook,
        /// Post: street, postal code and city all present (consent key POSTAL).
        Postal,
    }
);
mirror!(
    /// The kinds of record the change feed follows (`changes`).
    ChangeEntity => crate::domain::change::ChangeEntity {
        /// A lead (`Lead`).
        Lead,
        /// An account (`Account`).
        Account,
        /// A campaign (`Campaign`).
        Campaign,
        /// A cost line of a campaign (`CampaignCost`).
        CostLine,
        /// A touchpoint (`Touchpoint`).
        Touchpoint,
        /// An opportunity (`Opportunity`).
        Opportunity,
        /// A seat in an opportunity's buying center (`BuyingCenterMember`); its `entityId` is
        /// stable while the lead stays in the buying center, and is not a `node`.
        Contact,
    }
);
mirror!(
    /// What happened to a record (docs/changes.md).
    ChangeKind => crate::domain::change::ChangeKind {
        /// The record was made: every field that has a value, with `old` null.
        Created,
        /// Fields changed: each with its `old` and `new` value.
        Updated,
        /// The record was deleted: its last values in `old`.
        Deleted,
        /// A lead's personal data was erased (GDPR): the erased fields are listed with both
        /// values null, and the lead's earlier changes no longer hold them either.
        Erased,
        /// A lead was merged into another (`mergedIntoId`): it is an erased stub from now on,
        /// and its touchpoints, visitors, handoffs and buying-center seats belong to the other.
        Merged,
        /// A lead moved to another funnel stage: `stageId`, `stage` (the keys) and `reason`.
        StageChanged,
        /// A won deal's attribution credits changed under one model version (a touch, a stitch,
        /// a merge, a close, a new buying center or model version): `model` and `modelVersion`
        /// (the same in `old` and `new`) and `credits`, the deal's credits by campaign global ID
        /// (`none`: no campaign, or unattributed) as exact decimal text. No `version`: the deal
        /// itself did not change.
        CreditsChanged,
        /// A lead became a member of a persona (it reached the persona's threshold, after its or
        /// its account's attributes or the persona's criteria changed): `personaId`. No
        /// `version`: a derived signal.
        PersonaMatched,
        /// A lead stopped being a member of a persona: `personaId`. No `version`.
        PersonaUnmatched,
    }
);
