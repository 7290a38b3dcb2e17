//! Login helpers (filled in by the next commit).
