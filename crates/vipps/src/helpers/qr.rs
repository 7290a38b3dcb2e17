//! Conveniences for the QR API.
