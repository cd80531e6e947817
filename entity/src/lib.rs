//! sea-orm entities: one module per table, nothing else.

pub mod account;
pub mod api_key;
pub mod attribution_campaign_month;
pub mod attribution_credit;
pub mod attribution_model;
pub mod campaign;
pub mod campaign_cost;
pub mod event;
pub mod funnel_stage;
pub mod handoff;
pub mod lead;
pub mod lead_persona_match;
pub mod lead_score;
pub mod lead_stage_history;
pub mod opportunity;
pub mod opportunity_contact;
pub mod persona;
pub mod persona_criterion;
pub mod routing_rule;
pub mod scoring_model;
pub mod touchpoint;
pub mod user;
pub mod vocabulary_term;
pub mod webhook;
pub mod webhook_delivery;
pub mod workspace;
