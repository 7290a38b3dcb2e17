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

/// How a request authenticates; the runtime sets the headers it needs.
///
/// Declared per API in `openapi/manifest.toml` (`auth`, with `auth-operations` for the
/// operations of an API that authenticate otherwise) and emitted into each operation's
/// descriptor: the runtime never decides this from an API's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// `Authorization: Bearer <access token>` from the token cache, and
    /// `Ocp-Apim-Subscription-Key` (most APIs).
    BearerToken,
    /// The client id and secret as `client_id` and `client_secret` headers, and
    /// `Ocp-Apim-Subscription-Key` (`POST /accesstoken/get`, Checkout).
    ClientHeaders,
    /// `Authorization: Basic` of the client id and secret (`POST /miami/v1/token`; OAuth's
    /// `client_secret_basic`, as Login's token endpoint takes it). A client whose context says
    /// [`ClientAuth::Post`](crate::ClientAuth::Post) sends them in the form body instead.
    Basic,
    /// `Authorization: Bearer <access token>` with a token the caller gave the client
    /// ([`Context::with_user_token`](crate::Context::with_user_token)), such as a user's access
    /// token from a login, and `Ocp-Apim-Subscription-Key` (Userinfo). A client without one
    /// refuses the call before anything is sent.
    UserToken,
    /// No credentials.
    None,
}

/// A header the runtime sets from its configuration on the requests of the APIs that take it
/// (besides the credentials, `Merchant-Serial-Number` and `Vipps-System-*`, which every API gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManagedHeader {
    /// `Psp-Id`, when the runtime has one configured (the PSP API).
    PspId,
}

/// The environments in which an API is served. A custom base URL (the sandbox, a mock
/// server) is allowed for every API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Environments {
    /// Served at `https://apitest.vipps.no`.
    pub test: bool,
    /// Served at `https://api.vipps.no`.
    pub production: bool,
}

impl Environments {
    /// Served in both the test environment and production.
    pub const ALL: Self = Self { test: true, production: true };

    /// Whether the API can be called in `environment`.
    pub fn allows(&self, environment: &crate::Environment) -> bool {
        match environment {
            crate::Environment::Test => self.test,
            crate::Environment::Production => self.production,
            crate::Environment::Custom(_) => true,
        }
    }
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
    /// How the operation authenticates: the API's [`ApiDescriptor::auth`], unless the
    /// manifest says otherwise for this operation.
    pub auth: Auth,
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
    /// How the API's operations authenticate, unless an operation says otherwise.
    pub auth: Auth,
    /// The extra headers the runtime sets on this API's requests.
    pub headers: &'static [ManagedHeader],
    /// Where the API is served.
    pub environments: Environments,
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

    /// How the operation whose generated method is `method_name` authenticates (the API's
    /// default for a name the table does not hold).
    pub fn auth_of(&self, method_name: &str) -> Auth {
        self.operation(method_name).map_or(self.auth, |o| o.auth)
    }

    /// Whether the API takes the managed header `header`.
    pub fn takes(&self, header: ManagedHeader) -> bool {
        self.headers.contains(&header)
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
            auth: Auth::BearerToken,
        }
    }

    static SORTED: [OperationDescriptor; 4] = [op("cancel"), op("create"), op("get"), op("list")];
    static UNSORTED: [OperationDescriptor; 4] = [op("list"), op("create"), op("get"), op("cancel")];

    #[test]
    fn operations_are_found_in_sorted_and_unsorted_tables() {
        for operations in [&SORTED[..], &UNSORTED[..]] {
            let api = ApiDescriptor {
                name: "t",
                title: "t",
                version: "1",
                auth: Auth::BearerToken,
                headers: &[],
                environments: Environments::ALL,
                operations,
            };
            for name in ["cancel", "create", "get", "list"] {
                assert_eq!(api.operation(name).map(|o| o.method_name), Some(name));
            }
            assert!(api.operation("delete").is_none());
            assert!(api.operation("").is_none());
        }
    }
}
