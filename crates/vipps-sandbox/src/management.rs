//! Placeholder: being written.

use axum::Router;

use crate::state::AppState;

/// The store of this API.
#[derive(Debug, Default)]
pub struct Store {}

impl Store {
    /// The seeded merchants and sales units; `msn` is the sandbox's own merchant.
    pub fn seeded(msn: &str) -> Self {
        let _ = msn;
        Self {}
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
