//! The change feed's words: which records change, how, and what a change says about them.
//!
//! A record is seen through its *view*: its fields as the API names and spells them (camelCase,
//! global IDs for references, money as exact decimal text, times as RFC 3339 in UTC). A change
//! lists the fields it touched with their value before and after, so a connector can apply it
//! without reading the record again.
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::vocab::{normalize_code, string_enum};

string_enum!(
    /// The kinds of record the feed follows.
    ChangeEntity {
        Lead => "LEAD", Account => "ACCOUNT", Campaign => "CAMPAIGN", CostLine => "COST_LINE",
        Touchpoint => "TOUCHPOINT", Opportunity => "OPPORTUNITY", Contact => "CONTACT",
    }
);

string_enum!(
    /// What happened to a record (docs/changes.md): CREATED lists every field with its value;
    /// UPDATED the fields that changed, old and new; DELETED the last values; ERASED the erased
    /// fields without values (earlier changes of the lead lose them too); MERGED a lead merged
    /// into another (`mergedIntoId`); STAGE_CHANGED a lead's move to another funnel stage
    /// (`stage`, `stageId`, `reason`); CREDITS_CHANGED a won deal's attribution credits by
    /// campaign under one model version (`model`, `modelVersion`, `credits`);
    /// PERSONA_MATCHED and PERSONA_UNMATCHED a lead that became or stopped being a member of a
    /// persona (`personaId`).
    ChangeKind {
        Created => "CREATED", Updated => "UPDATED", Deleted => "DELETED", Erased => "ERASED",
        Merged => "MERGED", StageChanged => "STAGE_CHANGED", CreditsChanged => "CREDITS_CHANGED",
        PersonaMatched => "PERSONA_MATCHED", PersonaUnmatched => "PERSONA_UNMATCHED",
    }
);

impl ChangeEntity {
    /// The type name of the record's global ID.
    pub fn type_name(self) -> &'static str {
        match self {
            ChangeEntity::Lead => "Lead",
            ChangeEntity::Account => "Account",
            ChangeEntity::Campaign => "Campaign",
            ChangeEntity::CostLine => "CampaignCost",
            ChangeEntity::Touchpoint => "Touchpoint",
            ChangeEntity::Opportunity => "Opportunity",
            ChangeEntity::Contact => "BuyingCenterContact",
        }
    }
}

/// One field of a change: its API name and its values before and after (null: none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    #[serde(default)]
    pub old: Value,
    #[serde(default)]
    pub new: Value,
}

/// A record as the feed shows it: its fields in a fixed order.
pub type View = Vec<(&'static str, Value)>;

/// The stored body of a change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeData {
    pub fields: Vec<FieldChange>,
}

/// Every field of a new record (old values null).
pub fn created(view: View) -> Vec<FieldChange> {
    view.into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(field, new)| FieldChange {
            field: field.to_owned(),
            old: Value::Null,
            new,
        })
        .collect()
}

/// Every field of a deleted record (new values null).
pub fn deleted(view: View) -> Vec<FieldChange> {
    view.into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(field, old)| FieldChange {
            field: field.to_owned(),
            old,
            new: Value::Null,
        })
        .collect()
}

/// The fields whose values differ between two views of the same record, in view order.
pub fn diff(before: View, after: View) -> Vec<FieldChange> {
    debug_assert_eq!(before.len(), after.len(), "two views of one kind of record");
    before
        .into_iter()
        .zip(after)
        .filter(|((_, old), (_, new))| old != new)
        .map(|((field, old), (_, new))| FieldChange {
            field: field.to_owned(),
            old,
            new,
        })
        .collect()
}

/// The fields of a lead that hold personal data: erased with the lead, never kept in its
/// changes after the erasure.
pub const LEAD_PERSONAL: &[&str] = &[
    "externalId",
    "email",
    "firstName",
    "lastName",
    "jobTitle",
    "decisionRole",
    "phone",
    "linkedinUrl",
    "twitterHandle",
    "facebookUrl",
    "street",
    "postalCode",
    "city",
    "consents",
    "customFields",
];

/// Removes the values of personal fields from a stored change (the erasure of its lead); whether
/// anything was removed.
pub fn scrub(data: &mut ChangeData) -> bool {
    let mut changed = false;
    for f in &mut data.fields {
        if LEAD_PERSONAL.contains(&f.field.as_str()) && !(f.old.is_null() && f.new.is_null()) {
            f.old = Value::Null;
            f.new = Value::Null;
            changed = true;
        }
    }
    changed
}

/// The longest source tag (`X-Change-Source`).
pub const SOURCE_MAX: usize = 64;

/// The tag a caller gives its writes (`X-Change-Source`), so that it can leave them out of the
/// feed it reads: 1 to 64 characters of letters, digits and `. _ : / -`. Held inline, so that
/// the request's principal stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceTag {
    len: u8,
    bytes: [u8; SOURCE_MAX],
}

impl SourceTag {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let tag = raw.trim();
        if tag.is_empty() || tag.len() > SOURCE_MAX {
            return Err(format!("a change source has 1 to {SOURCE_MAX} characters"));
        }
        if !tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'/' | b'-'))
        {
            return Err("a change source has only letters, digits and . _ : / -".into());
        }
        let mut bytes = [0; SOURCE_MAX];
        bytes[..tag.len()].copy_from_slice(tag.as_bytes());
        Ok(Self {
            len: tag.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("checked to be ASCII")
    }
}

impl std::fmt::Debug for SourceTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SourceTag").field(&self.as_str()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(email: &str, name: Option<&str>, stage: &str) -> View {
        vec![
            ("email", json!(email)),
            ("firstName", name.map_or(Value::Null, |n| json!(n))),
            ("stageId", json!(stage)),
        ]
    }

    #[test]
    fn a_diff_lists_the_changed_fields_with_both_values() {
        let d = diff(view("a@x.de", None, "S1"), view("b@x.de", Some("Ann"), "S1"));
        assert_eq!(
            d,
            vec![
                FieldChange {
                    field: "email".into(),
                    old: json!("a@x.de"),
                    new: json!("b@x.de")
                },
                FieldChange {
                    field: "firstName".into(),
                    old: Value::Null,
                    new: json!("Ann")
                },
            ]
        );
        assert!(diff(view("a@x.de", None, "S1"), view("a@x.de", None, "S1")).is_empty());
    }

    #[test]
    fn created_and_deleted_leave_out_empty_fields() {
        let c = created(view("a@x.de", None, "S1"));
        assert_eq!(c.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["email", "stageId"]);
        assert!(c.iter().all(|f| f.old.is_null()));
        let d = deleted(view("a@x.de", None, "S1"));
        assert!(d.iter().all(|f| f.new.is_null() && !f.old.is_null()));
    }

    #[test]
    fn scrubbing_removes_personal_values_only() {
        let mut data = ChangeData {
            fields: diff(view("a@x.de", Some("Ann"), "S1"), view("b@x.de", Some("Bo"), "S2")),
        };
        assert!(scrub(&mut data));
        let by = |f: &str| data.fields.iter().find(|c| c.field == f).unwrap().clone();
        assert_eq!((by("email").old, by("email").new), (Value::Null, Value::Null));
        assert_eq!((by("firstName").old, by("firstName").new), (Value::Null, Value::Null));
        assert_eq!(by("stageId").new, json!("S2"));
        assert!(!scrub(&mut data), "nothing left to scrub");
    }

    #[test]
    fn source_tags() {
        let tag = |raw: &str| SourceTag::parse(raw).map(|t| t.as_str().to_owned());
        assert_eq!(tag(" hubspot-sync "), Ok("hubspot-sync".to_owned()));
        assert_eq!(tag("crm/eu:1.2_x"), Ok("crm/eu:1.2_x".to_owned()));
        assert_eq!(tag(&"x".repeat(64)).map(|t| t.len()), Ok(64));
        assert!(tag("").is_err());
        assert!(tag("has space").is_err());
        assert!(tag("überall").is_err());
        assert!(tag(&"x".repeat(65)).is_err());
    }
}
