//! The Management API through the facade against the sandbox: a partner onboarding a merchant
//! (look the merchant up by organisation number, list its sales units, prefill a product order,
//! follow it, delete it), the simulated business portal moving orders through their states,
//! every non-deprecated operation, and bad input (400 naming the field, nothing changed) and
//! unknown resources (404).

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::{json, Value};
use vipps_core::reqwest::{self, Method};
use vipps_core::Error;
use vipps_management::types as t;
use vipps_management::types::ProductOrderDetailsResponseV2Status as Status;
use vipps_sandbox::management::seed;
use vipps_sandbox::{Credentials, Sandbox};

fn org(id: &str) -> t::BusinessIdentifier {
    t::BusinessIdentifier { scheme: seed::NO_ORG.parse().unwrap(), id: id.parse().unwrap() }
}

/// A complete prefill for a Norwegian web shop on the partner's POS standard package.
fn order(org_number: &str) -> t::ProductOrderRequest {
    t::ProductOrderRequest {
        business_identifier: org(org_number),
        sales_unit_name: Some("Bakeriet på Hjørnet".parse().unwrap()),
        sales_unit_logo: Some(t::SalesUnitLogo("VGhlIGltYWdlIGdvZXMgaGVyZQ==".into())),
        settlement_bank_account: Some(t::BankAccount {
            scheme: "BBAN:NO".parse().unwrap(),
            id: "86011117947".parse().unwrap(),
        }),
        price_package_id: seed::PRICE_PACKAGE_NO.parse().ok(),
        product_type: t::ProductOrderRequestProductType::PaymentIntegration,
        product_use_case: Some(t::ProductUseCase::Website),
        annual_turnover: Some(2_500_000),
        annual_turnover_percentage: Some("30".parse().unwrap()),
        intended_purpose: Some("Bread and cakes ordered online for pick-up in the shop.".into()),
        app: None,
        website: Some(t::ProductOrderRequestWebsite {
            url: "https://bakeriet.example".into(),
            terms_url: "https://bakeriet.example/vilkar".into(),
            test_website_url: None,
            test_website_username: None,
            test_website_password: None,
        }),
        compliance_data: None,
        has_recurring: Some(false),
        merchant_category_code: Some(5462),
    }
}

/// Asserts a 400 whose problem names `field` in `detail` and `extraDetails`.
fn assert_names(err: &Error, field: &str) {
    assert_eq!(err.status(), Some(400), "{err}");
    let problem = err.problem().expect("a problem body");
    assert!(problem.detail.as_deref().unwrap_or("").contains(field), "{problem:?}");
    let named = problem.extra_details.as_ref().and_then(|d| d[0]["name"].as_str());
    assert_eq!(named, Some(field), "{problem:?}");
}

/// Raw HTTP with a sandbox token, for requests the generated types would refuse to build.
struct Raw {
    http: reqwest::Client,
    base: String,
    token: String,
    key: String,
}

impl Raw {
    async fn new(sandbox: &Sandbox) -> Self {
        let c = sandbox.credentials();
        let http = reqwest::Client::new();
        let token = support::raw_token(sandbox).await;
        Raw {
            http,
            base: sandbox.base_url().to_owned(),
            token: token.clone(),
            key: c.subscription_key.clone(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("Ocp-Apim-Subscription-Key", &self.key)
    }

    /// Sends and returns the status and the JSON body (null when there is none).
    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Asserts a raw 400 naming `field`.
fn assert_raw_names((status, body): &(u16, Value), field: &str) {
    assert_eq!(*status, 400, "{body}");
    assert_eq!(body["extraDetails"][0]["name"], field, "{body}");
    assert!(body["detail"].as_str().unwrap().contains(field), "{body}");
}

/// Plays the merchant or Vipps MobilePay on the simulated portal.
async fn portal(url: &str, step: Option<&str>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let response = match step {
        None => http.get(url).send().await.unwrap(),
        Some(step) => http.post(format!("{url}/{step}")).send().await.unwrap(),
    };
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn orders(m: &vipps_management::Client, include_expired: bool) -> Vec<t::ProductOrderDetailsResponseV2> {
    m.get_product_orders().include_expired(include_expired).send().await.unwrap().into_inner()
}

async fn details(m: &vipps_management::Client, created: &t::ProductOrderResponse) -> t::ProductOrderDetailsResponseV2 {
    let response = m.get_product_order_details().product_order_id(created.prefilled_order_id).send().await;
    response.unwrap().into_inner()
}

async fn all_msns(m: &vipps_management::Client) -> Vec<String> {
    let units = m.get_all_sales_units().send().await.unwrap().into_inner();
    units.0.into_iter().map(|u| u.msn.to_string()).collect()
}

#[tokio::test]
async fn a_partner_finds_a_merchant_prefills_an_order_follows_it_and_deletes_it() {
    let (sandbox, vipps) = support::start().await;
    let m = vipps.management().expect("management is allowed on a custom base URL");
    let own_msn = sandbox.credentials().merchant_serial_number.clone();

    // Who am I, and which prices can I offer?
    let me = m.get_partner_whoami().send().await.unwrap().into_inner();
    assert_eq!(me.partner_id.as_str(), seed::PARTNER_ID);
    assert_eq!(me.level, Some(t::GetPartnerResponseLevel::PartnerPremium));
    let packages = m.get_partner_price_packages().send().await.unwrap().into_inner();
    let pos = packages.iter().find(|p| p.price_package_id.to_string() == seed::PRICE_PACKAGE_NO).unwrap();
    assert_eq!(pos.product_type, Some(t::ProductType::PaymentIntegration));
    assert_eq!(pos.market, Some(t::PricePackageMarket::No));

    // The merchant, by organisation number, and its sales units.
    let merchant = m
        .get_merchant_by_business_identifier()
        .scheme(seed::NO_ORG)
        .id(seed::FJORDKAFFE_ORG)
        .send()
        .await

        .unwrap()
        .into_inner();
    assert_eq!(merchant.name.as_str(), "Fjordkaffe AS");
    assert_eq!(merchant.status, t::MerchantStatus::Active);
    assert_eq!(merchant.country_code.as_str(), "NO");
    let units = m
        .get_sales_units_by_business_identifier()
        .scheme(seed::NO_ORG)
        .id(seed::FJORDKAFFE_ORG)
        .send()
        .await

        .unwrap()
        .into_inner();
    let msns: Vec<_> = units.iter().map(|u| u.msn.to_string()).collect();
    assert_eq!(msns, [own_msn.as_str(), seed::FJORDKAFFE_BRYGGEN_MSN]);
    let unit = m.get_msn().msn(own_msn.as_str()).send().await.unwrap().into_inner();
    assert_eq!(unit.business_identifier, org(seed::FJORDKAFFE_ORG));
    assert_eq!(unit.configuration.capture_type, t::SalesUnitConfigurationCaptureType::ReserveCapture);

    // Prefill a product order for a new web shop.
    let seeded_orders = orders(&m, true).await;
    let created = m.order_product().body(order(seed::FJORDKAFFE_ORG)).send().await.unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let created = created.into_inner();
    let id = created.prefilled_order_id;
    assert_eq!(created.prefill_url, format!("{}/_sandbox/portal/product-orders/{id}", sandbox.base_url()));

    // It is listed (v2 and the deprecated v1) and can be inspected, in its first state.
    let listed = orders(&m, false).await;
    assert_eq!(listed.len(), seeded_orders.len() + 1);
    let details = m.get_product_order_details().product_order_id(id).send().await.unwrap();
    let details = details.into_inner();
    assert_eq!(listed.last(), Some(&details));
    assert_eq!(details.status, Status::Received);
    assert_eq!(details.product_order_type, Some(t::ProductOrderDetailsResponseV2ProductOrderType::Prefill));
    assert_eq!(details.product_type, Some(t::ProductType::PaymentIntegration));
    assert_eq!(details.business_identifier, org(seed::FJORDKAFFE_ORG));
    assert_eq!(details.product_order_url.as_deref(), Some(created.prefill_url.as_str()));
    assert_eq!(details.sales_unit, None);
    #[allow(deprecated)]
    {
        let v1 = m.get_product_order_details_v1().prefilled_product_order_id(id).send().await.unwrap().into_inner();
        assert_eq!(v1.status, t::ProductOrderDetailsResponseStatus::Received);
        assert_eq!(v1.product_order_id, Some(id));
        let v1_list = m.get_product_orders_v1().send().await.unwrap().into_inner();
        assert_eq!(v1_list, [v1], "v1 lists only prefilled orders");
    }
    let for_merchant = m
        .get_merchant_product_orders()
        .scheme(seed::NO_ORG)
        .id(seed::FJORDKAFFE_ORG)
        .send()
        .await

        .unwrap()
        .into_inner();
    assert_eq!(for_merchant.prefilled_product_order_id, [id]);

    // Wrong data: delete it. It is gone everywhere.
    let deleted = m.delete_product_order().prefilled_product_order_id(id).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 200);
    let err = m.get_product_order_details().product_order_id(id).send().await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    assert_eq!(orders(&m, true).await, seeded_orders);
    let err = m.delete_product_order().prefilled_product_order_id(id).send().await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    let for_merchant = m.get_merchant_product_orders().scheme(seed::NO_ORG).id(seed::FJORDKAFFE_ORG).send().await;
    assert!(for_merchant.unwrap().into_inner().prefilled_product_order_id.is_empty());
}

#[tokio::test]
async fn an_approved_order_onboards_a_new_merchant_with_a_new_sales_unit() {
    let (_sandbox, vipps) = support::start().await;
    let m = vipps.management().unwrap();
    let new = seed::NEW_BUSINESS_ORG;
    let err =
        m.get_merchant_by_business_identifier().scheme(seed::NO_ORG).id(new).send().await.unwrap_err();
    assert_eq!(err.status(), Some(404), "not a merchant yet");

    let created = m.order_product().body(order(new)).send().await.unwrap().into_inner();
    let id = created.prefilled_order_id;
    // The business has a prefilled order even before it is a merchant.
    let pending = m.get_merchant_product_orders().scheme(seed::NO_ORG).id(new).send().await.unwrap().into_inner();
    assert_eq!(pending.prefilled_product_order_id, [id]);

    // The merchant opens the link, then submits.
    let (code, page) = portal(&created.prefill_url, None).await;
    assert_eq!(code, 200, "{page}");
    assert_eq!(page["prefilled"]["salesUnitName"], "Bakeriet på Hjørnet");
    assert_eq!(details(&m, &created).await.status, Status::MerchantViewed);
    let (code, body) = portal(&created.prefill_url, Some("submit")).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ORDER_SUBMITTED")), "{body}");

    // Submitted orders cannot be deleted, and the refusal changes nothing.
    let err = m.delete_product_order().prefilled_product_order_id(id).send().await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(err.problem().unwrap().detail.as_deref().unwrap().contains("submitted"), "{err}");
    assert_eq!(details(&m, &created).await.status, Status::OrderSubmitted);

    // Vipps MobilePay approves it: a sales unit and a merchant appear.
    let (code, body) = portal(&created.prefill_url, Some("approve")).await;
    assert_eq!(code, 200, "{body}");
    let done = details(&m, &created).await;
    assert_eq!(done.status, Status::Completed);
    let new_unit = done.sales_unit.expect("a completed order names its sales unit");
    assert_eq!(new_unit.name, "Bakeriet på Hjørnet");
    let msn = new_unit.msn.to_string();
    let unit = m.get_msn().msn(msn.as_str()).send().await.unwrap().into_inner();
    assert_eq!(unit.business_identifier, org(new));
    assert_eq!(unit.configuration.payment_allowed, Some(true));
    let merchant = m.get_merchant_by_business_identifier().scheme(seed::NO_ORG).id(new).send().await.unwrap();
    assert_eq!(merchant.into_inner().status, t::MerchantStatus::Active);
    let units = m.get_sales_units_by_business_identifier().scheme(seed::NO_ORG).id(new).send().await.unwrap();
    assert_eq!(units.into_inner().iter().map(|u| u.msn.to_string()).collect::<Vec<_>>(), [msn.as_str()]);
    assert!(all_msns(&m).await.contains(&msn));
    let everyone = m.get_all_merchants().send().await.unwrap().into_inner().merchants;
    assert!(everyone.iter().any(|mi| mi.business_identifier == org(new)));
    #[allow(deprecated)]
    let v1 = m.get_product_order_details_v1().prefilled_product_order_id(id).send().await.unwrap().into_inner();
    assert_eq!(v1.status, t::ProductOrderDetailsResponseStatus::Completed);
    assert_eq!(v1.sales_unit.map(|s| s.msn.to_string()), Some(msn));

    // Steps out of order are refused.
    assert_eq!(portal(&created.prefill_url, Some("approve")).await.0, 409);
    assert_eq!(portal(&created.prefill_url, Some("submit")).await.0, 409);
}

#[tokio::test]
async fn a_declined_order_is_rejected_in_v2_and_still_submitted_in_v1() {
    let (_sandbox, vipps) = support::start().await;
    let m = vipps.management().unwrap();
    let created = m.order_product().body(order(seed::NORDLYS_ORG)).send().await.unwrap().into_inner();
    assert_eq!(portal(&created.prefill_url, Some("reject")).await.0, 409, "only a submitted order can be declined");
    assert_eq!(portal(&created.prefill_url, Some("submit")).await.0, 200);
    assert_eq!(portal(&created.prefill_url, Some("reject")).await.0, 200);
    let id = created.prefilled_order_id;
    let v2 = m.get_product_order_details().product_order_id(id).send().await.unwrap().into_inner();
    assert_eq!((v2.status, v2.sales_unit), (Status::Rejected, None));
    #[allow(deprecated)]
    let v1 = m.get_product_order_details_v1().prefilled_product_order_id(id).send().await.unwrap().into_inner();
    assert_eq!(v1.status, t::ProductOrderDetailsResponseStatus::OrderSubmitted);
    let err = m.delete_product_order().prefilled_product_order_id(id).send().await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
}

#[tokio::test]
async fn prefilled_orders_expire_after_14_days_and_are_listed_only_on_request() {
    let (sandbox, vipps) = support::start().await;
    let m = vipps.management().unwrap();
    let created = m.order_product().body(order(seed::FJORDKAFFE_ORG)).send().await.unwrap().into_inner();
    let id = created.prefilled_order_id;
    sandbox.advance_clock(Duration::from_secs(13 * 24 * 3600)).unwrap();
    assert_eq!(
        m.get_product_order_details().product_order_id(id).send().await.unwrap().into_inner().status,
        Status::Received
    );
    sandbox.advance_clock(Duration::from_secs(24 * 3600)).unwrap();
    let expired = m.get_product_order_details().product_order_id(id).send().await.unwrap().into_inner();
    assert_eq!(expired.status, Status::Expired);

    let ids = |list: Vec<t::ProductOrderDetailsResponseV2>| {
        list.into_iter().filter_map(|o| o.product_order_id).collect::<Vec<_>>()
    };
    assert!(!ids(orders(&m, false).await).contains(&id));
    let without_flag = m.get_product_orders().send().await.unwrap().into_inner();
    assert!(!ids(without_flag).contains(&id), "includeExpired defaults to false");
    assert!(ids(orders(&m, true).await).contains(&id));
    #[allow(deprecated)]
    {
        assert!(m.get_product_orders_v1().send().await.unwrap().into_inner().is_empty());
        let v1 = m.get_product_orders_v1().include_expired(true).send().await.unwrap().into_inner();
        assert_eq!(v1[0].status, t::ProductOrderDetailsResponseStatus::Expired);
    }
    // The link no longer works; an expired order was never submitted, so it can be deleted.
    assert_eq!(portal(&created.prefill_url, None).await.0, 410);
    m.delete_product_order().prefilled_product_order_id(id).send().await.unwrap();
    assert!(!ids(orders(&m, true).await).contains(&id));
}

#[tokio::test]
async fn the_same_idempotency_key_does_not_create_a_second_order() {
    let (_sandbox, vipps) = support::start().await;
    let m = vipps.management().unwrap();
    let before = orders(&m, true).await.len();
    let send =
        |body: t::ProductOrderRequest| m.order_product().idempotency_key("prefill-913579240-1").body(body).send();
    let first = send(order(seed::NEW_BUSINESS_ORG)).await.unwrap().into_inner();
    let again = send(order(seed::NEW_BUSINESS_ORG)).await.unwrap().into_inner();
    assert_eq!(first, again);
    assert_eq!(orders(&m, true).await.len(), before + 1);
    let mut other = order(seed::NEW_BUSINESS_ORG);
    other.annual_turnover = Some(1);
    let err = send(other).await.unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    assert_eq!(orders(&m, true).await.len(), before + 1);
}

#[tokio::test]
async fn update_msn_renames_and_deactivates_a_sales_unit() {
    let (_sandbox, vipps) = support::start().await;
    let m = vipps.management().unwrap();
    let msn = seed::NORDLYS_MSN;
    let rename = t::UpdateMsn {
        name: Some("Nordlys Sport Tromsø".parse().unwrap()),
        sales_unit_logo: Some("VGhlIGltYWdlIGdvZXMgaGVyZQ==".into()),
        status: Some(t::UpdateMsnStatus::Active),
    };
    let updated = m.update_msn().msn(msn).body(rename).send().await.unwrap();
    assert_eq!(updated.status().as_u16(), 200);
    assert_eq!(m.get_msn().msn(msn).send().await.unwrap().into_inner().name, "Nordlys Sport Tromsø");

    let deactivate = t::UpdateMsn { name: None, sales_unit_logo: None, status: Some(t::UpdateMsnStatus::Deactivated) };
    m.update_msn().msn(msn).body(deactivate).send().await.unwrap();
    let err = m.get_msn().msn(msn).send().await.unwrap_err();
    assert_eq!(err.status(), Some(404), "a deactivated sales unit is not shown: {err}");
    assert!(!all_msns(&m).await.contains(&msn.to_owned()));
    let of_merchant =
        m.get_sales_units_by_business_identifier().scheme(seed::NO_ORG).id(seed::NORDLYS_ORG).send().await;
    assert!(of_merchant.unwrap().into_inner().iter().any(|u| u.msn.as_str() == msn));

    // A rename through the SDK sends no `status` (the spec's PATCH body has no default), so
    // it leaves the status alone.
    let rename_only = t::UpdateMsn::try_from(t::UpdateMsn::builder().name("Nordlys Sport Nord")).unwrap();
    assert_eq!(serde_json::to_value(&rename_only).unwrap(), json!({"name": "Nordlys Sport Nord"}));
    m.update_msn().msn(msn).body(rename_only).send().await.unwrap();
    assert!(m.get_msn().msn(msn).send().await.is_err(), "still deactivated");

    let activate = t::UpdateMsn { name: None, sales_unit_logo: None, status: Some(t::UpdateMsnStatus::Active) };
    m.update_msn().msn(msn).body(activate).send().await.unwrap();
    assert_eq!(m.get_msn().msn(msn).send().await.unwrap().into_inner().name, "Nordlys Sport Nord");
    assert!(all_msns(&m).await.contains(&msn.to_owned()));
}

#[tokio::test]
async fn the_proposal_endpoints_answer() {
    let (sandbox, vipps) = support::start().await;
    let m = vipps.management().unwrap();
    let merchants = m.get_all_merchants().send().await.unwrap().into_inner().merchants;
    let ids: Vec<_> = merchants.iter().map(|mi| mi.business_identifier.id.to_string()).collect();
    assert_eq!(ids, [seed::FJORDKAFFE_ORG, seed::NORDLYS_ORG, seed::VINTERHAGE_ORG, seed::HAVNENS_CVR]);
    assert_eq!(merchants[3].business_identifier.scheme.as_str(), seed::DK_CVR);

    let contracts = m
        .get_merchant_contracts()
        .scheme(seed::DK_CVR)
        .id(seed::HAVNENS_CVR)
        .send()
        .await

        .unwrap()
        .into_inner();
    assert!(!contracts.urls.is_empty() && contracts.urls.iter().all(|u| u.ends_with(".pdf")), "{contracts:?}");

    let own = sandbox.credentials().merchant_serial_number.clone();
    let quality = m.get_api_quality().msn(own.as_str()).send().await.unwrap().into_inner();
    assert!(!quality.api_quality_items.is_empty());
    for item in &quality.api_quality_items {
        let rate = item.success_rate.unwrap();
        assert!((0.0..=100.0).contains(&rate), "{item:?}");
        assert!(item.endpoint.as_deref().unwrap().contains(':'), "{item:?}");
    }
}

#[tokio::test]
async fn a_deactivated_merchant_is_found_but_its_sales_units_are_hidden() {
    let (_sandbox, vipps) = support::start().await;
    let m = vipps.management().unwrap();
    let merchant = m.get_merchant_by_business_identifier().scheme(seed::NO_ORG).id(seed::VINTERHAGE_ORG).send().await;
    assert_eq!(merchant.unwrap().into_inner().status, t::MerchantStatus::Deactivated);
    for msn in [seed::VINTERHAGE_MSN, seed::NORDLYS_DEACTIVATED_MSN] {
        let err = m.get_msn().msn(msn).send().await.unwrap_err();
        assert_eq!(err.status(), Some(404), "{msn}: {err}");
        assert!(!all_msns(&m).await.contains(&msn.to_owned()));
    }
    let dk = m.get_msn().msn(seed::HAVNENS_MSN).send().await.unwrap().into_inner();
    assert_eq!(dk.business_identifier.scheme.as_str(), seed::DK_CVR);
    assert_eq!(dk.configuration.late_capture_allowed, Some(false));
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_changes_nothing() {
    let (sandbox, vipps) = support::start().await;
    let m = vipps.management().unwrap();
    let orders_before = orders(&m, true).await;
    let units_before = all_msns(&m).await;

    // Path parameters through the facade.
    let err = m.get_merchant_by_business_identifier().scheme(seed::NO_ORG).id("92345678A").send().await.unwrap_err();
    assert_names(&err, "id");
    let err = m.get_sales_units_by_business_identifier().scheme(seed::NO_ORG).id("12345").send().await.unwrap_err();
    assert_names(&err, "id");
    let err = m.get_merchant_contracts().scheme("business:SE:ORG").id("5560000000").send().await.unwrap_err();
    assert_names(&err, "scheme");

    // Product orders the generated types accept but the API refuses.
    let bad_orders: Vec<(&str, t::ProductOrderRequest)> = vec![
        // The spec's own example: 10 digits is not a Norwegian organisation number.
        ("businessIdentifier.id", order("9876543221")),
        (
            "pricePackageId",
            t::ProductOrderRequest {
                price_package_id: "0f0e0d0c-0b0a-4909-8807-060504030201".parse().ok(),
                ..order(seed::NEW_BUSINESS_ORG)
            },
        ),
        (
            "pricePackageId",
            t::ProductOrderRequest {
                price_package_id: seed::PRICE_PACKAGE_DK.parse().ok(),
                ..order(seed::NEW_BUSINESS_ORG)
            },
        ),
        (
            "pricePackageId",
            t::ProductOrderRequest {
                product_type: t::ProductOrderRequestProductType::Login,
                ..order(seed::NEW_BUSINESS_ORG)
            },
        ),
        (
            "merchantCategoryCode",
            t::ProductOrderRequest { merchant_category_code: Some(12345), ..order(seed::NEW_BUSINESS_ORG) },
        ),
        (
            "salesUnitName",
            t::ProductOrderRequest {
                sales_unit_name: Some("Kaffe & Kake".parse().unwrap()),
                ..order(seed::NEW_BUSINESS_ORG)
            },
        ),
        (
            "salesUnitLogo",
            t::ProductOrderRequest {
                sales_unit_logo: Some(t::SalesUnitLogo("not base64!".into())),
                ..order(seed::NEW_BUSINESS_ORG)
            },
        ),
        (
            "website.testWebsiteUrl",
            t::ProductOrderRequest {
                product_use_case: Some(t::ProductUseCase::WebsiteWithTest),
                ..order(seed::NEW_BUSINESS_ORG)
            },
        ),
        (
            "app",
            t::ProductOrderRequest { product_use_case: Some(t::ProductUseCase::App), ..order(seed::NEW_BUSINESS_ORG) },
        ),
    ];
    for (field, body) in bad_orders {
        let err = m.order_product().body(body).send().await.unwrap_err();
        assert_names(&err, field);
    }
    // Out of the spec's `minimum`/`maximum`: refused by the generated types before sending.
    // (A negative turnover no longer compiles: the field is unsigned.)
    let body = t::ProductOrderRequest { annual_turnover: Some(1_000_000_000), ..order(seed::NEW_BUSINESS_ORG) };
    let err = m.order_product().body(body).send().await.unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { message } if message.contains("maximum 999999999")), "{err}");
    let mut http_site = order(seed::NEW_BUSINESS_ORG);
    http_site.website.as_mut().unwrap().url = "http://bakeriet.example".into();
    assert_names(&m.order_product().body(http_site).send().await.unwrap_err(), "website.url");

    // Requests the generated types would not even build: raw HTTP.
    let raw = Raw::new(&sandbox).await;
    let valid = serde_json::to_value(order(seed::NEW_BUSINESS_ORG)).unwrap();
    let post = |body: &Value| {
        raw.request(Method::POST, "/management/v1/product-orders").header("Idempotency-Key", "raw-1").json(body)
    };
    let mut letters = valid.clone();
    letters["businessIdentifier"]["id"] = json!("91357924O");
    assert_raw_names(&raw.send(post(&letters)).await, "businessIdentifier.id");
    let mut no_type = valid.clone();
    no_type.as_object_mut().unwrap().remove("productType");
    assert_raw_names(&raw.send(post(&no_type)).await, "productType");
    let mut bad_enum = valid.clone();
    bad_enum["productType"] = json!("POS");
    assert_raw_names(&raw.send(post(&bad_enum)).await, "productType");
    let mut percentage = valid.clone();
    percentage["annualTurnoverPercentage"] = json!("35");
    assert_raw_names(&raw.send(post(&percentage)).await, "annualTurnoverPercentage");
    let no_key = raw.request(Method::POST, "/management/v1/product-orders").json(&valid);
    assert_raw_names(&raw.send(no_key).await, "Idempotency-Key");
    let bad_key =
        raw.request(Method::POST, "/management/v1/product-orders").header("Idempotency-Key", "a_b").json(&valid);
    assert_raw_names(&raw.send(bad_key).await, "Idempotency-Key");

    let long_name = json!({"name": "x".repeat(51)});
    let patch =
        raw.request(Method::PATCH, &format!("/management/v1/sales-units/{}", seed::NORDLYS_MSN)).json(&long_name);
    assert_raw_names(&raw.send(patch).await, "name");
    let patch = raw
        .request(Method::PATCH, &format!("/management/v1/sales-units/{}", seed::NORDLYS_MSN))
        .json(&json!({"status": "PAUSED"}));
    assert_raw_names(&raw.send(patch).await, "status");
    assert_raw_names(&raw.send(raw.request(Method::GET, "/management/v1/sales-units/12ab")).await, "msn");
    let details = raw.request(Method::GET, "/management/v2/product-orders/not-a-uuid/details");
    assert_raw_names(&raw.send(details).await, "productOrderId");
    let list = raw.request(Method::GET, "/management/v2/product-orders?includeExpired=yes");
    assert_raw_names(&raw.send(list).await, "includeExpired");

    assert_eq!(orders(&m, true).await, orders_before, "no product order was created");
    assert_eq!(all_msns(&m).await, units_before);
    assert_eq!(m.get_msn().msn(seed::NORDLYS_MSN).send().await.unwrap().into_inner().name, "Nordlys Sport");
}

#[tokio::test]
async fn unknown_merchants_sales_units_and_orders_are_404() {
    let (sandbox, vipps) = support::start().await;
    let m = vipps.management().unwrap();
    let unknown = seed::NEW_BUSINESS_ORG;
    let results = [
        m.get_merchant_by_business_identifier().scheme(seed::NO_ORG).id(unknown).send().await.map(|_| ()),
        m.get_sales_units_by_business_identifier().scheme(seed::NO_ORG).id(unknown).send().await.map(|_| ()),
        m.get_merchant_contracts().scheme(seed::NO_ORG).id(unknown).send().await.map(|_| ()),
        m.get_merchant_product_orders().scheme(seed::NO_ORG).id(unknown).send().await.map(|_| ()),
        m.get_msn().msn("999999").send().await.map(|_| ()),
        m.get_api_quality().msn("999999").send().await.map(|_| ()),
        m.update_msn().msn("999999").body(t::UpdateMsn::default()).send().await.map(|_| ()),
        m.get_product_order_details().product_order_id("0f0e0d0c-0b0a-4909-8807-060504030201").send().await.map(|_| ()),
        m.delete_product_order()
            .prefilled_product_order_id("0f0e0d0c-0b0a-4909-8807-060504030201")
            .send()
            .await
            .map(|_| ()),
        // The seeded MANUAL order is not a prefilled order: the prefill-only endpoints do not know it.
        m.delete_product_order().prefilled_product_order_id(seed::MANUAL_ORDER_ID).send().await.map(|_| ()),
    ];
    for (i, result) in results.into_iter().enumerate() {
        let err = result.unwrap_err();
        assert_eq!(err.status(), Some(404), "call {i}: {err}");
        assert!(err.problem().and_then(|p| p.detail.clone()).is_some(), "call {i}");
    }
    // The seeded MANUAL order itself is there, completed, with the sandbox's own sales unit.
    let manual =
        m.get_product_order_details().product_order_id(seed::MANUAL_ORDER_ID).send().await.unwrap().into_inner();
    assert_eq!(manual.status, Status::Completed);
    assert_eq!(manual.product_order_url, None);
    assert_eq!(manual.sales_unit.unwrap().msn.as_str(), sandbox.credentials().merchant_serial_number);
}

#[tokio::test]
async fn the_seeded_merchant_follows_the_configured_msn_and_the_portal_needs_test_mode() {
    let credentials = Credentials { merchant_serial_number: "777777".into(), ..Credentials::default() };
    let sandbox = Sandbox::builder().credentials(credentials).test_mode(false).start().await.unwrap();
    let vipps = support::client(&sandbox);
    let m = vipps.management().unwrap();
    let msns = all_msns(&m).await;
    assert_eq!(msns[0], "777777");
    assert!(!msns.contains(&"123456".to_owned()));
    let unit = m.get_msn().msn("777777").send().await.unwrap().into_inner();
    assert_eq!(unit.business_identifier, org(seed::FJORDKAFFE_ORG));

    let created = m.order_product().body(order(seed::FJORDKAFFE_ORG)).send().await.unwrap().into_inner();
    assert_eq!(portal(&created.prefill_url, None).await.0, 404, "no simulated portal outside test mode");
    assert_eq!(portal(&created.prefill_url, Some("submit")).await.0, 404);
    let details = m.get_product_order_details().product_order_id(created.prefilled_order_id).send().await.unwrap();
    assert_eq!(details.into_inner().status, Status::Received);
}
