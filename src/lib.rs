//! closedloop: a GraphQL backend for closed-loop reporting between marketing and sales.
//!
//! Layers point one way: `http` -> `graphql` -> `service` -> `store` + `domain` + `events`; the
//! bulk export goes `http`/`cli` -> `export` -> `store` + `domain`.
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod export;
pub mod graphql;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;

/// A boxed error for start-up and CLI paths, where the message is all that matters.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
