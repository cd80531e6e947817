//! Opaque global IDs: base64 of `Type:123`, so that `node(id:)` knows what to load.
use async_graphql::ID;

use crate::domain::ids::{global_id, parse_global_id};
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeType {
    Account,
    Campaign,
    CampaignCost,
    FunnelStage,
    Handoff,
    Lead,
    Opportunity,
    Persona,
    RoutingRule,
    ScoringModel,
    Touchpoint,
    TrackingLink,
    User,
    Webhook,
}

impl NodeType {
    pub fn name(self) -> &'static str {
        match self {
            NodeType::Account => "Account",
            NodeType::Campaign => "Campaign",
            NodeType::CampaignCost => "CampaignCost",
            NodeType::FunnelStage => "FunnelStage",
            NodeType::Handoff => "Handoff",
            NodeType::RoutingRule => "RoutingRule",
            NodeType::ScoringModel => "ScoringModel",
            NodeType::Webhook => "Webhook",
            NodeType::Lead => "Lead",
            NodeType::Opportunity => "Opportunity",
            NodeType::Persona => "Persona",
            NodeType::Touchpoint => "Touchpoint",
            NodeType::TrackingLink => "TrackingLink",
            NodeType::User => "User",
        }
    }

    const ALL: [NodeType; 14] = [
        NodeType::Account,
        NodeType::Campaign,
        NodeType::CampaignCost,
        NodeType::FunnelStage,
        NodeType::Handoff,
        NodeType::RoutingRule,
        NodeType::ScoringModel,
        NodeType::Webhook,
        NodeType::Lead,
        NodeType::Opportunity,
        NodeType::Persona,
        NodeType::Touchpoint,
        NodeType::TrackingLink,
        NodeType::User,
    ];
}

pub fn encode(kind: NodeType, id: i64) -> ID {
    ID(global_id(kind.name(), id))
}

/// Any global ID: its type and database ID. `None` for anything that is not one of ours.
pub fn decode_any(id: &str) -> Option<(NodeType, i64)> {
    let (name, num) = parse_global_id(id)?;
    let kind = NodeType::ALL.into_iter().find(|k| k.name() == name)?;
    Some((kind, num))
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
        use base64::Engine;
        assert_eq!(decode_any(&base64::engine::general_purpose::STANDARD.encode("Lead:-1")), None);
    }
}
