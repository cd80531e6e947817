//! Integration tests: the real server on an ephemeral port with a fresh database per test,
//! spoken to over HTTP and WebSocket. Every test runs on SQLite, and on PostgreSQL too when
//! `TEST_DATABASE_URL` is set.
#[macro_use]
mod helpers;

mod accounts;
mod adversarial;
mod attribution;
mod auth;
mod browser;
mod campaigns;
mod changes;
mod checkpoints;
mod commands;
mod cors;
mod decode;
mod erasure;
mod examples;
mod export;
mod export_tables;
mod filters;
mod handoffs;
mod ingest;
mod inputs;
mod isolation;
mod kpis;
mod leads;
mod limits;
mod merges;
mod metrics;
mod money;
mod node;
mod nplusone;
mod opportunities;
mod pagination;
mod persisted;
mod personas;
mod planned;
mod reach;
mod schema;
mod scoring;
mod subscriptions;
mod sweep;
mod touchpoints;
mod tracking;
mod upserts;
mod user_keys;
mod webhooks;
mod websocket;
