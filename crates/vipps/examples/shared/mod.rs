//! What the examples share: where they run. With none of the four `VIPPS_*` credentials set
//! (an empty value counts as unset) an example runs offline against the in-process sandbox;
//! with all four, against the Vipps MobilePay test environment; with only some, nowhere, and
//! it says which are missing.
// Each example uses the pieces it needs (the Report example only the sandbox's client).
#![allow(dead_code)]

use vipps::Vipps;
use vipps_sandbox::Sandbox;

/// The variables that take an example to the Vipps MobilePay test environment: all or none.
pub const CREDENTIALS: [&str; 4] = [
    "VIPPS_CLIENT_ID",
    "VIPPS_CLIENT_SECRET",
    "VIPPS_SUBSCRIPTION_KEY",
    "VIPPS_MERCHANT_SERIAL_NUMBER",
];

/// Whether to run against the test environment: yes when every one of [`CREDENTIALS`] is set,
/// no (the sandbox) when none is, and an error naming the missing ones when only some are.
pub fn use_test_environment(is_set: impl Fn(&str) -> bool) -> std::result::Result<bool, String> {
    let (set, missing): (Vec<&str>, Vec<&str>) = CREDENTIALS.iter().partition(|k| is_set(k));
    match (set.is_empty(), missing.is_empty()) {
        (true, _) => Ok(false),
        (false, true) => Ok(true),
        (false, false) => Err(format!(
            "{} set, but not {}: set all of {} to run against the Vipps MobilePay test \
             environment, or none of them to run offline against the in-process sandbox",
            set.join(", "),
            missing.join(", "),
            CREDENTIALS.join(", "),
        )),
    }
}

/// The client, and the sandbox it talks to when there are no credentials (to keep alive while
/// the client is used), and where that is, to print. `system` names the example in the
/// `Vipps-System-Name` header; `test_only` says why it may not run in production.
pub async fn connect(
    system: &str,
    test_only: &str,
) -> Result<(Vipps, Option<Sandbox>, String), Box<dyn std::error::Error>> {
    if use_test_environment(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))? {
        if std::env::var("VIPPS_ENVIRONMENT").is_ok_and(|e| e.eq_ignore_ascii_case("production")) {
            return Err(format!("{test_only}; unset VIPPS_ENVIRONMENT").into());
        }
        let vipps = vipps::VippsBuilder::from_env()?
            .system(system, env!("CARGO_PKG_VERSION"))
            .build()?;
        return Ok((vipps, None, "the Vipps MobilePay test environment".into()));
    }
    let sandbox = Sandbox::start().await?;
    let vipps = sandbox_client(&sandbox, system)?;
    let place = format!(
        "the in-process sandbox at {} (no VIPPS_* credentials set)",
        sandbox.base_url()
    );
    Ok((vipps, Some(sandbox), place))
}

/// A client for `sandbox`, with the credentials it accepts; `system` names the example.
pub fn sandbox_client(sandbox: &Sandbox, system: &str) -> Result<Vipps, vipps::Error> {
    let c = sandbox.credentials();
    Vipps::builder()
        .client_id(&c.client_id)
        .client_secret(&c.client_secret)
        .subscription_key(&c.subscription_key)
        .merchant_serial_number(&c.merchant_serial_number)
        .system(system, env!("CARGO_PKG_VERSION"))
        .base_url(sandbox.base_url())
        .build()
}

/// The test user who approves in the test environment (`VIPPS_TEST_PHONE_NUMBER`).
pub fn phone_number() -> String {
    std::env::var("VIPPS_TEST_PHONE_NUMBER").unwrap_or_else(|_| "4791234567".into())
}

#[cfg(test)]
mod tests {
    use super::use_test_environment;

    #[test]
    fn all_four_credentials_mean_the_test_environment_and_none_the_sandbox() {
        assert_eq!(use_test_environment(|_| true), Ok(true));
        assert_eq!(use_test_environment(|_| false), Ok(false));
    }

    #[test]
    fn some_credentials_are_an_error_naming_the_missing_ones() {
        let err = use_test_environment(|k| k == "VIPPS_CLIENT_ID" || k == "VIPPS_SUBSCRIPTION_KEY").unwrap_err();
        assert!(err.starts_with("VIPPS_CLIENT_ID, VIPPS_SUBSCRIPTION_KEY set, but not VIPPS_CLIENT_SECRET, VIPPS_MERCHANT_SERIAL_NUMBER:"), "{err}");
        let err = use_test_environment(|k| k == "VIPPS_CLIENT_ID").unwrap_err();
        assert!(err.starts_with("VIPPS_CLIENT_ID set, but not VIPPS_CLIENT_SECRET, VIPPS_SUBSCRIPTION_KEY, VIPPS_MERCHANT_SERIAL_NUMBER:"), "{err}");
        // Three of four, the merchant serial number left out, is not enough either.
        let err = use_test_environment(|k| k != "VIPPS_MERCHANT_SERIAL_NUMBER").unwrap_err();
        assert!(err.contains("but not VIPPS_MERCHANT_SERIAL_NUMBER:"), "{err}");
    }
}
