//! Conveniences for the Report API.
