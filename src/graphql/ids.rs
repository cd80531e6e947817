//! Opaque global IDs: base64 of `Type:123`, so that `node(id:)` knows what to load.
use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeType {
    Account,
    Campaign,
    CampaignCost,
    FunnelStage,
    Lead,
    Opportunity,
    Persona,
    Touchpoint,
    User,
}

impl NodeType {
    fn name(self) -> &'static str {
        match self {
            NodeType::Account => "Account",
            NodeType::Campaign => "Campaign",
            NodeType::CampaignCost => "CampaignCost",
            NodeType::FunnelStage => "FunnelStage",
            NodeType::Lead => "Lead",
            NodeType::Opportunity => "Opportunity",
            NodeType::Persona => "Persona",
            NodeType::Touchpoint => "Touchpoint",
            NodeType::User => "User",
        }
    }

    const ALL: [NodeType; 9] = [
        NodeType::Account,
        NodeType::Campaign,
        NodeType::CampaignCost,
        NodeType::FunnelStage,
        NodeType::Lead,
        NodeType::Opportunity,
        NodeType::Persona,
        NodeType::Touchpoint,
        NodeType::User,
    ];
}

pub fn encode(kind: NodeType, id: i64) -> ID {
    ID(STANDARD.encode(format!("{}:{id}", kind.name())))
}

/// Any global ID: its type and database ID. `None` for anything that is not one of ours.
pub fn decode_any(id: &str) -> Option<(NodeType, i64)> {
    let raw = STANDARD.decode(id.trim()).ok()?;
    let raw = std::str::from_utf8(&raw).ok()?;
    let (name, num) = raw.split_once(':')?;
    let kind = NodeType::ALL.into_iter().find(|k| k.name() == name)?;
    let num: i64 = num.parse().ok()?;
    (num > 0).then_some((kind, num))
}

/// A global ID that must be of `kind`. A malformed ID or one of another type reads as
/// "not found": IDs tell nothing about what exists.
pub fn decode(kind: NodeType, id: &ID) -> Result<i64, AppError> {
    match decode_any(id) {
        Some((k, num)) if k == kind => Ok(num),
        _ => Err(AppError::NotFound(format!("no {} with id {:?}", kind.name(), id.as_str()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id = encode(NodeType::Lead, 42);
        assert_eq!(decode(NodeType::Lead, &id).unwrap(), 42);
        assert!(decode(NodeType::Account, &id).is_err());
        assert_eq!(decode_any("not base64!"), None);
        assert_eq!(decode_any(&STANDARD.encode("Lead:-1")), None);
    }
}
