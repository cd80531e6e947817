//! GraphQL enums mirroring the domain's closed enumerations, and `CostCategory`, which was one
//! and is now a workspace vocabulary.
use async_graphql::{Enum, InputValueError, InputValueResult, Scalar, ScalarType, Value};

use crate::domain::vocab;

macro_rules! mirror {
    ($(#[$m:meta])* $name:ident => $domain:path { $($v:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
        pub enum $name { $($v),+ }

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
    /// What an API key may do.
    Role => vocab::Role { Admin, Marketing, Sales, Analyst }
);
mirror!(
    /// Whether a contact or account already buys from us.
    LifecycleStatus => vocab::LifecycleStatus { Lead, NewCustomer, ExistingCustomer }
);
mirror!(
    /// The marketing goal of a campaign.
    CampaignKind => vocab::CampaignKind { Acquisition, Nurture, Onboarding, CrossSell, Upsell, Loyalty }
);
mirror!(CampaignStatus => vocab::CampaignStatus { Planned, Active, Completed, Cancelled });
mirror!(OpportunityStatus => vocab::OpportunityStatus { Open, Won, Lost });

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
    Won,
    Lost,
}

mirror!(
    /// Where a handoff stands: waiting for sales, or answered.
    HandoffStatus => crate::domain::handoff::HandoffStatus { Pending, Accepted, Rejected, Recycled }
);
mirror!(
    /// What happened to a handoff.
    HandoffEventKind => crate::domain::handoff::EventKind { Created, Accepted, Rejected, Recycled, Reassigned }
);
mirror!(
    /// A channel a lead can be contacted on (reach).
    ReachChannel => crate::domain::reach::ReachChannel { Email, Phone, Linkedin, Twitter, Facebook, Postal }
);
