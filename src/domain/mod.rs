//! Pure domain code: no database, no GraphQL. Everything here is testable with plain unit tests.
pub mod attribution;
pub mod country;
pub mod destination;
pub mod email;
pub mod handoff;
pub mod ids;
pub mod input;
pub mod kpi;
pub mod markov;
pub mod money;
pub mod persona;
pub mod reach;
pub mod scoring;
pub mod search;
pub mod spreadsheet;
pub mod tracking;
pub mod vocab;
