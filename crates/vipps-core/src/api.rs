//! Descriptions of the generated APIs, emitted by `cargo xtask codegen` into each crate.

/// Whether an operation is in service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationStatus {
    /// In service and recommended.
    Current,
    /// Still served, but replaced by a newer operation.
    Deprecated,
    /// Described by Vipps MobilePay as an idea or proposal; not yet served.
    Proposal,
}

/// One operation of a generated client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationDescriptor {
    /// The method name on the generated `Client` (`list_agreements_v3`).
    pub method_name: &'static str,
    /// The spec's operationId (`ListAgreementsV3`).
    pub operation_id: &'static str,
    /// HTTP method in upper case.
    pub http_method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// Whether the operation is current, deprecated or a proposal.
    pub status: OperationStatus,
    /// Whether the operation takes an `Idempotency-Key` header.
    pub idempotency_key: bool,
}

/// One generated API.
#[derive(Debug)]
pub struct ApiDescriptor {
    /// Short name (`recurring`), used in tracing and errors.
    pub name: &'static str,
    /// The spec's title.
    pub title: &'static str,
    /// The spec's version.
    pub version: &'static str,
    /// Every operation of the API.
    pub operations: &'static [OperationDescriptor],
}

impl ApiDescriptor {
    /// The operation whose generated method is `method_name`.
    pub fn operation(&self, method_name: &str) -> Option<&'static OperationDescriptor> {
        self.operations.iter().find(|o| o.method_name == method_name)
    }
}
