//! The domain's fixed enumerations and the default workspace vocabularies.
//!
//! Channels, touchpoint types and cost categories are per-workspace vocabularies (codes in
//! SCREAMING_SNAKE_CASE); the lists here are what a new workspace starts with.

pub const DEFAULT_CHANNELS: &[&str] = &[
    "EMAIL",
    "WEBINAR",
    "PAID_SOCIAL",
    "PAID_SEARCH",
    "DISPLAY",
    "TRADE_FAIR",
    "CONTENT",
    "EVENT",
    "ORGANIC",
    "REFERRAL",
    "DIRECT",
];

pub const DEFAULT_TOUCHPOINT_TYPES: &[&str] = &[
    "EMAIL_SENT",
    "EMAIL_OPEN",
    "EMAIL_CLICK",
    "EMAIL_BOUNCED",
    "UNSUBSCRIBED",
    "PAGE_VIEW",
    "FORM_SUBMIT",
    "WHITEPAPER_DOWNLOAD",
    "WEBINAR_REGISTER",
    "WEBINAR_ATTEND",
    "AD_CLICK",
    "TRADE_FAIR_SCAN",
    "EVENT_VISIT",
    "MEETING",
    "SALES_CALL",
];

/// The cost categories a workspace starts with (those of [`CostCategory`]).
pub const DEFAULT_COST_CATEGORIES: &[&str] = &["PRODUCTION", "MEDIA", "CONTENT", "SOFTWARE", "TICKETS", "DISCOUNTS", "OTHER"];

/// Vocabulary kinds kept in `vocabulary_terms.kind`.
pub const VOCAB_CHANNEL: &str = "CHANNEL";
pub const VOCAB_TOUCHPOINT_TYPE: &str = "TOUCHPOINT_TYPE";
pub const VOCAB_COST_CATEGORY: &str = "COST_CATEGORY";

/// Kind of a funnel stage: on the success path or beside it.
pub const STAGE_SUCCESS: &str = "SUCCESS";
pub const STAGE_SIDE: &str = "SIDE";

/// The default funnel: (key, name, kind), success path first, in order.
pub const DEFAULT_STAGES: &[(&str, &str, &str)] = &[
    ("LEAD", "Lead", STAGE_SUCCESS),
    ("MQL", "Marketing qualified lead", STAGE_SUCCESS),
    ("SQL", "Sales qualified lead", STAGE_SUCCESS),
    ("OPPORTUNITY", "Opportunity", STAGE_SUCCESS),
    ("CUSTOMER", "Customer", STAGE_SUCCESS),
    ("NURTURE", "Nurture", STAGE_SIDE),
    ("DISQUALIFIED", "Disqualified", STAGE_SIDE),
];

/// A user-supplied code in canonical form: trimmed, upper case, spaces and dashes as `_`.
/// Returns `None` unless the result is a non-empty `[A-Z0-9_]` word of at most 64 characters.
pub fn normalize_code(raw: &str) -> Option<String> {
    let code: String = raw
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    let ok = !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(code)
}

/// Declares a closed enumeration stored as its SCREAMING_SNAKE_CASE name.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Case-insensitive parse (spaces and dashes count as `_`).
            pub fn parse(raw: &str) -> Option<Self> {
                let code = normalize_code(raw)?;
                match code.as_str() { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// What an API key may do.
    Role { Admin => "ADMIN", Marketing => "MARKETING", Sales => "SALES", Analyst => "ANALYST" }
);
string_enum!(LifecycleStatus { Lead => "LEAD", NewCustomer => "NEW_CUSTOMER", ExistingCustomer => "EXISTING_CUSTOMER" });
string_enum!(CampaignKind {
    Acquisition => "ACQUISITION", Nurture => "NURTURE", Onboarding => "ONBOARDING",
    CrossSell => "CROSS_SELL", Upsell => "UPSELL", Loyalty => "LOYALTY",
});
string_enum!(CampaignStatus { Planned => "PLANNED", Active => "ACTIVE", Completed => "COMPLETED", Cancelled => "CANCELLED" });
string_enum!(
    /// The default cost categories, for code that writes them (seed, demo); a workspace may
    /// have more.
    CostCategory {
    Production => "PRODUCTION", Media => "MEDIA", Content => "CONTENT", Software => "SOFTWARE",
    Tickets => "TICKETS", Discounts => "DISCOUNTS", Other => "OTHER",
    }
);
string_enum!(OpportunityStatus { Open => "OPEN", Won => "WON", Lost => "LOST" });

/// What a caller wants to change; each role may do a fixed set of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Accounts and leads (contacts): marketing and sales both keep them, CRM connectors sync them.
    WriteContacts,
    /// Campaigns, their costs, touchpoints and personas.
    WriteMarketing,
    /// Opportunities and their buying centers.
    WriteDeals,
    /// Hand a qualified lead to sales (marketing's side of the handoff).
    HandOff,
    /// Accept, reject, recycle or reassign a handoff (sales' side).
    AnswerHandoff,
    /// GDPR erasure, vocabularies, workspace settings, the funnel, routing rules, webhooks.
    Administer,
}

impl Role {
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            Role::Marketing => matches!(action, WriteContacts | WriteMarketing | HandOff),
            Role::Sales => matches!(action, WriteContacts | WriteDeals | AnswerHandoff),
            Role::Analyst => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_normalized() {
        assert_eq!(normalize_code(" paid social ").as_deref(), Some("PAID_SOCIAL"));
        assert_eq!(normalize_code("trade-fair").as_deref(), Some("TRADE_FAIR"));
        assert_eq!(normalize_code(""), None);
        assert_eq!(normalize_code("e-mail!"), None);
    }

    #[test]
    fn enums_parse_case_insensitively() {
        assert_eq!(OpportunityStatus::parse("won"), Some(OpportunityStatus::Won));
        assert_eq!(CampaignKind::parse("cross-sell"), Some(CampaignKind::CrossSell));
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::Analyst.to_string(), "ANALYST");
    }

    #[test]
    fn default_cost_categories_are_the_enum() {
        let names: Vec<&str> = CostCategory::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, DEFAULT_COST_CATEGORIES);
    }

    #[test]
    fn analysts_only_read() {
        for action in [
            Action::WriteContacts,
            Action::WriteMarketing,
            Action::WriteDeals,
            Action::HandOff,
            Action::AnswerHandoff,
            Action::Administer,
        ] {
            assert!(!Role::Analyst.allows(action));
            assert!(Role::Admin.allows(action));
        }
        assert!(Role::Sales.allows(Action::WriteDeals) && !Role::Sales.allows(Action::WriteMarketing));
        assert!(Role::Marketing.allows(Action::WriteMarketing) && !Role::Marketing.allows(Action::WriteDeals));
        assert!(Role::Marketing.allows(Action::HandOff) && !Role::Marketing.allows(Action::AnswerHandoff));
        assert!(Role::Sales.allows(Action::AnswerHandoff) && !Role::Sales.allows(Action::HandOff));
    }
}
