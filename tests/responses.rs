//! Responses stay readable when an API sends what its document does not list: an enum value
//! added without notice is kept as `Unknown(String)`, and `msn` in the Management API's sales
//! unit lists may be a JSON number. Requests still send only the values the documents list.

use serde_json::json;
use vipps_management::types as mgmt;
use vipps_recurring::types as rc;

#[test]
fn price_packages_with_an_unlisted_product_type_decode() {
    let body = json!([
        { "pricePackageId": "8a11afb7-c223-48ed-8ca6-4722b97261aa", "name": "POS standard", "description": "2.99%", "productType": "PAYMENT_INTEGRATION", "market": "NO" },
        { "pricePackageId": "3f1b2c9e-6a55-4e7e-9d1c-0c2a4f6b8e11", "name": "ePayment", "description": "1.99%", "productType": "ePayment", "market": "SE" }
    ]);
    let packages: mgmt::GetPartnerPricePackagesResponse = serde_json::from_value(body).expect("one new value must not fail the list");
    assert_eq!(packages[0].product_type, Some(mgmt::ProductType::PaymentIntegration));
    assert_eq!(packages[1].product_type, Some(mgmt::ProductType::Unknown("ePayment".into())));
    assert_eq!(packages[1].market, Some(mgmt::PricePackageMarket::Unknown("SE".into())));
    assert_eq!(packages[1].product_type.as_ref().unwrap().to_string(), "ePayment", "Display gives the value as sent");
}

#[test]
fn whoami_with_an_unlisted_partner_level_decodes() {
    let body = json!({ "partnerId": "123456", "name": "ACME Partner Inc", "level": "Vipps Partner", "status": "ACTIVE" });
    let partner: mgmt::GetPartnerResponse = serde_json::from_value(body).expect("whoami with a new level");
    assert_eq!(partner.level, Some(mgmt::GetPartnerResponseLevel::Unknown("Vipps Partner".into())));
    assert_eq!(partner.status, Some(mgmt::GetPartnerResponseStatus::Active));
}

#[test]
fn sales_unit_lists_take_msn_as_a_number_or_a_string() {
    let list: mgmt::GetMsnResponse = serde_json::from_value(json!([
        { "msn": 123456, "name": "ACME Fantastic Fitness" },
        { "msn": "654321", "name": "ACME Fitness Oslo" }
    ]))
    .expect("msn as a JSON number");
    assert_eq!(list[0].msn.as_str(), "123456");
    assert_eq!(list[1].msn.as_str(), "654321");
    // The number is checked like the string: four to ten digits.
    let err = serde_json::from_value::<mgmt::GetMsnResponse>(json!([{ "msn": 12, "name": "x" }])).unwrap_err().to_string();
    assert!(err.contains("shorter than 4"), "{err}");
    assert!(serde_json::from_value::<mgmt::GetMsnResponse>(json!([{ "msn": -1234, "name": "x" }])).is_err());
    assert!(serde_json::from_value::<mgmt::GetMsnResponse>(json!([{ "msn": 1234.5, "name": "x" }])).is_err());
    // Sent as the string the API documents.
    assert_eq!(serde_json::to_value(&list[0]).unwrap()["msn"], json!("123456"));
}

#[test]
fn an_unlisted_agreement_status_decodes_but_is_never_sent() {
    let status: rc::AgreementStatus = serde_json::from_value(json!("PAUSED")).expect("a new status");
    assert_eq!(status, rc::AgreementStatus::Unknown("PAUSED".into()));
    assert_eq!(serde_json::from_value::<rc::AgreementStatus>(json!("ACTIVE")).unwrap(), rc::AgreementStatus::Active);
    let err = serde_json::to_value(&status).unwrap_err().to_string();
    assert!(err.contains("PAUSED") && err.contains("not sent"), "{err}");
    assert!("PAUSED".parse::<rc::AgreementStatus>().is_err(), "parsing still takes only listed values");
    assert_eq!(serde_json::to_value(rc::AgreementStatus::Active).unwrap(), json!("ACTIVE"));
}
