//! Pure domain code: no database, no GraphQL. Everything here is testable with plain unit tests.
pub mod email;
pub mod money;
pub mod search;
pub mod vocab;
