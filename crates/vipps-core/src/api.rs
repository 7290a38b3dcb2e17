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
    /// Every operation of the API; the generated tables are sorted by `method_name`.
    pub operations: &'static [OperationDescriptor],
}

impl ApiDescriptor {
    /// The operation whose generated method is `method_name`.
    ///
    /// Every call looks its operation up, so a generated table (sorted) is searched by
    /// halves; a table put together by hand in another order is still searched in full.
    pub fn operation(&self, method_name: &str) -> Option<&'static OperationDescriptor> {
        let ops = self.operations;
        match ops.binary_search_by(|o| o.method_name.cmp(method_name)) {
            Ok(i) => Some(&ops[i]),
            Err(_) => ops.iter().find(|o| o.method_name == method_name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn op(method_name: &'static str) -> OperationDescriptor {
        OperationDescriptor {
            method_name,
            operation_id: method_name,
            http_method: "GET",
            path: "/",
            status: OperationStatus::Current,
            idempotency_key: false,
        }
    }

    static SORTED: [OperationDescriptor; 4] = [op("cancel"), op("create"), op("get"), op("list")];
    static UNSORTED: [OperationDescriptor; 4] = [op("list"), op("create"), op("get"), op("cancel")];

    #[test]
    fn operations_are_found_in_sorted_and_unsorted_tables() {
        for operations in [&SORTED[..], &UNSORTED[..]] {
            let api = ApiDescriptor { name: "t", title: "t", version: "1", operations };
            for name in ["cancel", "create", "get", "list"] {
                assert_eq!(api.operation(name).map(|o| o.method_name), Some(name));
            }
            assert!(api.operation("delete").is_none());
            assert!(api.operation("").is_none());
        }
    }
}
