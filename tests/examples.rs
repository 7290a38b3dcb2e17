//! Every example body in `fixtures/examples` (copied from the API documentation) must
//! deserialize into the generated type of its operation and serialize back to the same JSON.
//!
//! Fixture names: `<api>/<operationId>.request.json` (request body), `.response.json`
//! (success body), `.error.json` (error body of an operation without a success body).

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::path::PathBuf;

fn fixture(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/examples").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A documented, specific difference the generated type legitimately introduces when it
/// serializes again. Each one is checked against the original before it is applied, so it
/// can only excuse exactly the change it names.
#[derive(Debug)]
enum Norm {
    /// A field absent from the example whose spec `default` is written out on serialization.
    DefaultAdded(&'static str, Value),
    /// An empty array that is skipped on serialization (`skip_serializing_if = "Vec::is_empty"`).
    EmptyArrayDropped(&'static str),
    /// An integer in the example for a `type: number` field, written back as a float (95 -> 95.0).
    IntegerAsFloat(&'static str),
}

/// Applies `norms` to `expected` (the example as written), asserting each one's precondition.
fn normalize(rel: &str, mut expected: Value, norms: &[Norm]) -> Value {
    for n in norms {
        match n {
            Norm::DefaultAdded(ptr, v) => {
                let (parent, key) = ptr.rsplit_once('/').unwrap();
                let obj = expected.pointer_mut(parent).and_then(Value::as_object_mut).unwrap_or_else(|| panic!("{rel}: no object at {parent}"));
                assert!(!obj.contains_key(key), "{rel}: {ptr} is present; normalization {n:?} is stale");
                obj.insert(key.to_owned(), v.clone());
            }
            Norm::EmptyArrayDropped(ptr) => {
                let (parent, key) = ptr.rsplit_once('/').unwrap();
                let obj = expected.pointer_mut(parent).and_then(Value::as_object_mut).unwrap_or_else(|| panic!("{rel}: no object at {parent}"));
                assert_eq!(obj.remove(key), Some(Value::Array(vec![])), "{rel}: {ptr} is not an empty array; normalization is stale");
            }
            Norm::IntegerAsFloat(ptr) => {
                let v = expected.pointer_mut(ptr).unwrap_or_else(|| panic!("{rel}: no value at {ptr}"));
                let i = v.as_i64().unwrap_or_else(|| panic!("{rel}: {ptr} is not an integer; normalization is stale"));
                *v = serde_json::json!(i as f64);
            }
        }
    }
    expected
}

/// Deserializes `rel` into `T`, serializes it back and asserts the JSON equals the example
/// (after the listed normalizations; most tests list none).
fn round_trip_normalized<T: DeserializeOwned + Serialize>(rel: &str, norms: &[Norm]) -> T {
    let raw = fixture(rel);
    let original = normalize(rel, raw.clone(), norms);
    let typed: T = serde_json::from_value(raw).unwrap_or_else(|e| {
        panic!("{rel} does not deserialize into {}: {e}", std::any::type_name::<T>())
    });
    let back = serde_json::to_value(&typed).expect("serialize");
    assert_eq!(back, original, "{rel}: round trip through {} changed the JSON", std::any::type_name::<T>());
    typed
}

macro_rules! examples {
    ($($name:ident: $file:literal => $ty:ty $([$($norm:expr),* $(,)?])?;)*) => {
        $(
            #[test]
            fn $name() {
                let _: $ty = round_trip_normalized::<$ty>($file, &[$($($norm),*)?]);
            }
        )*

        /// Every fixture file on disk is covered by one of the tests above.
        #[test]
        fn every_fixture_is_tested() {
            let tested: std::collections::BTreeSet<&str> = [$($file),*].into_iter().collect();
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/examples");
            let mut on_disk = std::collections::BTreeSet::new();
            for api in std::fs::read_dir(&root).unwrap() {
                let api = api.unwrap();
                for f in std::fs::read_dir(api.path()).unwrap() {
                    let f = f.unwrap();
                    on_disk.insert(format!("{}/{}", api.file_name().to_string_lossy(), f.file_name().to_string_lossy()));
                }
            }
            let untested: Vec<_> = on_disk.iter().filter(|f| !tested.contains(f.as_str()) && !ERROR_FIXTURES.contains(&f.as_str())).collect();
            assert!(untested.is_empty(), "fixtures without a test: {untested:?}");
        }
    };
}

use vipps_accesstoken::types as at;
use vipps_management::types as mg;
use vipps_order_management::types as om;
use vipps_psp::types as psp;
use vipps_recurring::types as rc;

examples! {
    // accesstoken
    accesstoken_fetch_access_token_response: "accesstoken/fetchAuthorizationTokenUsingPost.response.json" => at::AuthorizationTokenResponse;
    accesstoken_fetch_token_response: "accesstoken/fetchToken.response.json" => at::TokenResponse;

    // recurring
    recurring_cancel_charge_response: "recurring/CancelCharge.response.json" => rc::ChargeResponseV2;
    recurring_capture_charge_v3_request: "recurring/CaptureChargeV3.request.json" => rc::CaptureRequestV3;
    recurring_create_charge_request: "recurring/CreateCharge.request.json" => rc::CreateChargeV2;
    recurring_create_charge_response: "recurring/CreateCharge.response.json" => rc::ChargeReference;
    recurring_create_charge_async_v3_request: "recurring/CreateChargeAsyncV3.request.json" => Vec<rc::CreateChargeAsyncV3>;
    recurring_create_charge_async_v3_response: "recurring/CreateChargeAsyncV3.response.json" => rc::AsyncChargeResponse;
    recurring_create_charge_v3_request: "recurring/CreateChargeV3.request.json" => rc::CreateChargeV3;
    recurring_create_charge_v3_response: "recurring/CreateChargeV3.response.json" => rc::ChargeReference;
    // `isApp` has `default: false` in the spec; typify writes the default out.
    recurring_draft_agreement_request: "recurring/DraftAgreement.request.json" => rc::DraftAgreementV2
        [Norm::DefaultAdded("/isApp", Value::Bool(false))];
    recurring_fetch_charge_response: "recurring/FetchCharge.response.json" => rc::ChargeResponseV2;
    recurring_fetch_charge_by_id_v3_response: "recurring/FetchChargeByIdV3.response.json" => rc::ChargeResponseV3;
    recurring_fetch_charge_v3_response: "recurring/FetchChargeV3.response.json" => rc::ChargeResponseV3;
    recurring_list_charges_response: "recurring/ListCharges.response.json" => Vec<rc::ChargeResponseV2>;
    recurring_list_charges_v3_response: "recurring/ListChargesV3.response.json" => Vec<rc::ChargeResponseV3>;
    recurring_refund_charge_request: "recurring/RefundCharge.request.json" => rc::RefundRequest;
    recurring_refund_charge_v3_request: "recurring/RefundChargeV3.request.json" => rc::RefundRequest;
    recurring_update_agreement_patch_request: "recurring/UpdateAgreementPatch.request.json" => rc::PatchAgreementV2;
    recurring_update_agreement_patch_response: "recurring/UpdateAgreementPatch.response.json" => rc::AgreementReference;
    // FINDING (reported): IntervalUpdateRequest.type has `default: RECURRING`, so the example's
    // `"interval": {}` is sent as `{"type":"RECURRING"}` (without the `period` RECURRING requires).
    recurring_update_agreement_patch_v3_request: "recurring/UpdateAgreementPatchV3.request.json" => rc::PatchAgreementV3;
    recurring_update_agreement_put_request: "recurring/UpdateAgreementPut.request.json" => rc::PatchAgreementV2;
    recurring_update_agreement_put_response: "recurring/UpdateAgreementPut.response.json" => rc::AgreementReference;
    recurring_accept_using_patch_request: "recurring/acceptUsingPATCH.request.json" => rc::ForceAcceptAgreement;
    recurring_accept_using_patch_v3_request: "recurring/acceptUsingPATCHV3.request.json" => rc::ForceAcceptAgreementV3;

    // psp
    psp_get_payment_details_response: "psp/getPSPPaymentDetailsUsingGET.response.json" => psp::PaymentDetailsRepresentation;
    psp_initiate_payment_v3_request: "psp/initiatePaymentV3UsingPOST.request.json" => psp::InitiatePaymentRequest;
    psp_initiate_payment_v3_response: "psp/initiatePaymentV3UsingPOST.response.json" => psp::PaymentInitiationRepresentation;
    psp_force_approve_payment_request: "psp/integrationTestApprovePayment.request.json" => psp::ForceApproveRequest;
    // The makePayment callback (operationId makePaymentV3UsingPOST) that Vipps sends to the PSP.
    psp_make_payment_callback_request: "psp/makePayment.request.json" => psp::MakePaymentRequest;
    psp_make_payment_callback_response: "psp/makePayment.response.json" => psp::MakePaymentResponse;
    psp_updatestatus_request: "psp/updatestatusUsingPOST.request.json" => psp::PaymentStatus;
    psp_updatestatus_response: "psp/updatestatusUsingPOST.response.json" => psp::Response;

    // management
    management_get_all_merchants_response: "management/getAllMerchants.response.json" => mg::GetAllMerchantsResponse;
    management_get_all_sales_units_response: "management/getAllSalesUnits.response.json" => mg::GetMsnResponse;
    // `total Requests` and `successRate` are `type: number` (f64): 1000 -> 1000.0, 95 -> 95.0.
    management_get_api_quality_response: "management/getApiQuality.response.json" => mg::ApiQualityResponse
        [Norm::IntegerAsFloat("/ApiQualityItems/0/total Requests"), Norm::IntegerAsFloat("/ApiQualityItems/0/successRate")];
    management_get_merchant_by_business_identifier_response: "management/getMerchantByBusinessIdentifier.response.json" => mg::GetMerchantResponse;
    management_get_merchant_contracts_response: "management/getMerchantContracts.response.json" => mg::GetMerchantContractsResponse;
    management_get_merchant_product_orders_response: "management/getMerchantProductOrders.response.json" => mg::GetMerchantProductOrdersResponse;
    management_get_msn_response: "management/getMsn.response.json" => mg::SalesUnit;
    management_get_msn_response_2: "management/getMsn.response-2.json" => mg::SalesUnit;
    management_get_partner_price_packages_response: "management/getPartnerPricePackages.response.json" => mg::GetPartnerPricePackagesResponse;
    management_get_partner_whoami_response: "management/getPartnerWhoami.response.json" => mg::GetPartnerResponse;
    management_get_product_order_details_response: "management/getProductOrderDetails.response.json" => mg::ProductOrderDetailsResponseV2;
    management_get_product_order_details_v1_response: "management/getProductOrderDetailsV1.response.json" => mg::ProductOrderDetailsResponse;
    management_get_sales_units_by_business_identifier_response: "management/getSalesUnitsByBusinessIdentifier.response.json" => mg::GetMsnResponse;
    // `hasRecurring` has `default: false` in the spec; typify writes the default out.
    management_order_product_request: "management/orderProduct.request.json" => mg::ProductOrderRequest
        [Norm::DefaultAdded("/hasRecurring", Value::Bool(false))];
    management_order_product_response: "management/orderProduct.response.json" => mg::ProductOrderResponse;
    management_update_msn_request: "management/updateMsn.request.json" => mg::UpdateMsn;

    // order-management
    order_management_post_image_request: "order-management/post-image.request.json" => om::Image;
    order_management_post_receipt_v2_request: "order-management/post-receipt-v2.request.json" => om::Receipt;
    order_management_put_category_v2_request: "order-management/put-category-v2.request.json" => om::Order;
}

/// Error bodies of Recurring v3 operations that have no success body.
const ERROR_FIXTURES: &[&str] = &[
    "recurring/UpdateAgreementPatchV3.error.json",
    "recurring/CancelChargeV3.error.json",
    "recurring/CaptureChargeV3.error.json",
    "recurring/RefundChargeV3.error.json",
];

#[test]
fn recurring_v3_error_bodies_round_trip_as_error_v3() {
    for rel in ERROR_FIXTURES {
        // `extraDetails: []` is skipped on serialization (`skip_serializing_if = "Vec::is_empty"`).
        let typed: rc::ErrorV3 = round_trip_normalized(rel, &[Norm::EmptyArrayDropped("/extraDetails")]);
        assert!(typed.title.is_some() && typed.status.is_some(), "{rel}: title/status not read");
    }
}

#[test]
fn recurring_v3_error_bodies_read_as_problem() {
    for rel in ERROR_FIXTURES {
        let original = fixture(rel);
        let problem = vipps_core::Problem::from_value(original.clone());
        let s = |k: &str| original.get(k).and_then(Value::as_str).map(str::to_owned);
        assert_eq!(problem.title, s("title"), "{rel}: title");
        assert_eq!(problem.detail, s("detail"), "{rel}: detail");
        assert_eq!(problem.type_, s("type"), "{rel}: type");
        assert_eq!(problem.instance, s("instance"), "{rel}: instance");
        assert_eq!(problem.context_id, s("contextId"), "{rel}: contextId");
        assert_eq!(
            problem.status.map(u64::from),
            original.get("status").and_then(Value::as_u64),
            "{rel}: status"
        );
        // serde's Deserialize path must agree with from_value.
        let via_serde: vipps_core::Problem = serde_json::from_value(original).unwrap();
        assert_eq!(via_serde, problem, "{rel}: Deserialize and from_value disagree");
    }
}

/// The facade's tests carry copies of a few of these fixtures (a package's tests may not read
/// files outside the package); the copies must stay the documented examples.
#[test]
fn the_facade_tests_fixture_copies_match_these() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let copies = here.join("../crates/vipps/tests/fixtures");
    let mut compared = 0;
    for api in std::fs::read_dir(&copies).unwrap().flatten() {
        for file in std::fs::read_dir(api.path()).unwrap().flatten() {
            let original = here.join("fixtures/examples").join(api.file_name()).join(file.file_name());
            let (copy, original_text) = (std::fs::read(file.path()).unwrap(), std::fs::read(&original));
            assert_eq!(Some(copy), original_text.ok(), "{} differs from {}", file.path().display(), original.display());
            compared += 1;
        }
    }
    assert_eq!(compared, 4, "the facade's tests use four fixtures");
}
