//! The Management API: merchants, sales units, prefilled product orders, price packages and
//! the proposal endpoints, over a seeded partner and its merchants.
//!
//! The caller acts as a partner with partner keys, so no `Merchant-Serial-Number` is needed.
//! `POST /management/v1/product-orders` requires an `Idempotency-Key` (`^[a-zA-Z0-9-]{1,50}$`);
//! the SDK sends one by itself.
//!
//! # Seeded data
//!
//! The partner (`GET /management/v1/partners/whoami`): *Sandbox Partner AS*, partner id
//! `4321`, level *Partner Premium*, status `ACTIVE`.
//!
//! Price packages (`GET /management/v1/partners/price-packages`):
//!
//! | `pricePackageId` | name | product | market |
//! |---|---|---|---|
//! | `8a11afb7-c223-48ed-8ca6-4722b97261aa` | POS standard, 2.99% | `PAYMENT_INTEGRATION` | `NO` |
//! | `8a11afb7-c223-48ed-8ca6-4722b97261ab` | Checkout NO, 2.49% | `CHECKOUT` | `NO` |
//! | `8a11afb7-c223-48ed-8ca6-4722b97261ac` | Betaling DK, 1.45% | `PAYMENT_INTEGRATION` | `DK` |
//!
//! Merchants and their sales units (all connected to the partner):
//!
//! | scheme | id | merchant | status | sales units (MSN, name) |
//! |---|---|---|---|---|
//! | `business:NO:ORG` | `923456783` | Fjordkaffe AS | `ACTIVE` | *the configured MSN* (`123456` by default) Fjordkaffe Nettbutikk; `223344` Fjordkaffe Bryggen |
//! | `business:NO:ORG` | `934567897` | Nordlys Sport AS | `ACTIVE` | `334455` Nordlys Sport; `334456` Nordlys Sport Medlemskap (Recurring allowed); `334457` Nordlys Sport Sommerleir (deactivated sales unit) |
//! | `business:NO:ORG` | `987654325` | Vinterhage Blomster AS | `DEACTIVATED` | `445566` Vinterhage Blomster |
//! | `business:DK:CVR` | `31415926` | Havnens Bageri ApS | `ACTIVE` | `556677` Havnens Bageri |
//!
//! The sandbox's own merchant (the one its credentials carry) is Fjordkaffe AS. If the
//! configured MSN equals one of the other MSNs, that other sales unit moves to the next free
//! number. `913579240` is a well-formed organisation number that is *not* a merchant yet: use it
//! to try onboarding a new merchant. One product order is seeded: a `MANUAL` order
//! `5b0c6a1e-2f4d-4c8a-9e3b-7d1f0a2b3c4d` for Fjordkaffe AS, `COMPLETED`, whose sales unit is the
//! configured MSN. The constants in [`seed`] hold these values.
//!
//! # Rules the sandbox applies
//!
//! - Business identifiers: `business:NO:ORG` takes 9 digits, `business:DK:CVR` 8 digits,
//!   `business:FI:Y-tunnus` 7 digits, a hyphen and a check digit (`1234567-8`); other schemes
//!   are a 400 naming `scheme` (path) or `businessIdentifier.scheme` (body).
//! - `getMsn` answers 404 unless the sales unit and its merchant are both active;
//!   `getAllSalesUnits` lists only those. `getSalesUnitsByBusinessIdentifier` lists all of the
//!   merchant's sales units.
//! - `orderProduct` checks the body against the generated `ProductOrderRequest`, then: the price
//!   package must be one of the partner's, for the same product type and the business's
//!   market; `annualTurnover` 0 to 999 999 999; `merchantCategoryCode` 0 to 9999;
//!   `salesUnitName` as the spec's `x-vipps-pattern` (letters, marks, digits, whitespace and
//!   the punctuation it allows); `salesUnitLogo` base64; `settlementBankAccount.scheme`
//!   `BBAN:<country>`; website addresses HTTPS; `productUseCase` `App` needs `app`,
//!   `Website`/`WebsiteWithTest` need `website`, `WebsiteWithTest` needs
//!   `website.testWebsiteUrl`. The business need not be a merchant yet.
//! - Product order states: a prefilled order starts `RECEIVED`; opening its `prefillUrl`
//!   makes it `MERCHANT_VIEWED`; the merchant submits it (`ORDER_SUBMITTED`); Vipps MobilePay
//!   approves it (`COMPLETED`, with a new sales unit, and a new merchant if the business was
//!   not one) or declines it (`REJECTED` in v2; v1 still says `ORDER_SUBMITTED`, as the guide
//!   describes). An order not submitted within 14 days (sandbox clock) is `EXPIRED`. Orders
//!   that were submitted cannot be deleted (400); others can (then 404).
//! - `updateMsn` changes only the fields present in the body (a PATCH): a rename leaves the
//!   status alone.
//! - The v1 endpoints and `deleteProductOrder` know only prefilled orders: 404 for the
//!   seeded `MANUAL` order.
//! - `getApiQuality` and `getMerchantContracts` answer canned sample data.
//!
//! # The simulated business portal (test mode only)
//!
//! `prefillUrl` points at the sandbox itself, so tests can play the merchant and Vipps
//! MobilePay. These routes need no credentials and answer 404 when test mode is off:
//!
//! - `GET /_sandbox/portal/product-orders/{id}`: the merchant opens the link
//!   (`RECEIVED` → `MERCHANT_VIEWED`); answers the order and the prefilled data; 410 once
//!   expired.
//! - `POST /_sandbox/portal/product-orders/{id}/submit`: the merchant submits
//!   (`RECEIVED`/`MERCHANT_VIEWED` → `ORDER_SUBMITTED`).
//! - `POST /_sandbox/portal/product-orders/{id}/approve`: `ORDER_SUBMITTED` → `COMPLETED`.
//! - `POST /_sandbox/portal/product-orders/{id}/reject`: `ORDER_SUBMITTED` → `REJECTED`.
//!
//! The three steps answer the order as `getProductOrderDetails` (v2) would. A step from the
//! wrong state is a 409; any step on an expired order is a 410.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::Router;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;
use vipps_management::types as t;
use vipps_management::types::ProductOrderDetailsResponseV2ProductOrderType as OrderType;
use vipps_management::types::ProductOrderDetailsResponseV2Status as Status;

use crate::extract::{parse_json, Json, Path, Query};
use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState};

/// The seeded values, for tests and documentation.
pub mod seed {
    /// The partner's id.
    pub const PARTNER_ID: &str = "4321";
    /// The scheme of Norwegian organisation numbers.
    pub const NO_ORG: &str = "business:NO:ORG";
    /// The scheme of Danish CVR numbers.
    pub const DK_CVR: &str = "business:DK:CVR";
    /// Fjordkaffe AS, the sandbox's own merchant: its sales units are the configured MSN and
    /// [`FJORDKAFFE_BRYGGEN_MSN`].
    pub const FJORDKAFFE_ORG: &str = "923456783";
    /// Fjordkaffe AS's second sales unit.
    pub const FJORDKAFFE_BRYGGEN_MSN: &str = "223344";
    /// Nordlys Sport AS.
    pub const NORDLYS_ORG: &str = "934567897";
    /// Nordlys Sport's main sales unit.
    pub const NORDLYS_MSN: &str = "334455";
    /// Nordlys Sport's sales unit with Recurring.
    pub const NORDLYS_MEMBERSHIP_MSN: &str = "334456";
    /// Nordlys Sport's deactivated sales unit.
    pub const NORDLYS_DEACTIVATED_MSN: &str = "334457";
    /// Vinterhage Blomster AS, a deactivated merchant.
    pub const VINTERHAGE_ORG: &str = "987654325";
    /// Vinterhage Blomster's sales unit (hidden, as its merchant is deactivated).
    pub const VINTERHAGE_MSN: &str = "445566";
    /// Havnens Bageri ApS, a Danish merchant (CVR).
    pub const HAVNENS_CVR: &str = "31415926";
    /// Havnens Bageri's sales unit.
    pub const HAVNENS_MSN: &str = "556677";
    /// A well-formed organisation number that is not a merchant yet, for onboarding.
    pub const NEW_BUSINESS_ORG: &str = "913579240";
    /// Price package: POS standard, `PAYMENT_INTEGRATION`, Norway.
    pub const PRICE_PACKAGE_NO: &str = "8a11afb7-c223-48ed-8ca6-4722b97261aa";
    /// Price package: Checkout NO, `CHECKOUT`, Norway.
    pub const PRICE_PACKAGE_CHECKOUT_NO: &str = "8a11afb7-c223-48ed-8ca6-4722b97261ab";
    /// Price package: Betaling DK, `PAYMENT_INTEGRATION`, Denmark.
    pub const PRICE_PACKAGE_DK: &str = "8a11afb7-c223-48ed-8ca6-4722b97261ac";
    /// The seeded `MANUAL`, `COMPLETED` product order of Fjordkaffe AS.
    pub const MANUAL_ORDER_ID: &str = "5b0c6a1e-2f4d-4c8a-9e3b-7d1f0a2b3c4d";
}

/// How long a prefilled product order waits for the merchant before it is `EXPIRED`.
const PREFILL_LIFETIME_DAYS: i64 = 14;

#[derive(Debug, Clone)]
struct SalesUnitRecord {
    msn: String,
    name: String,
    business: t::BusinessIdentifier,
    active: bool,
    configuration: t::SalesUnitConfiguration,
    #[allow(dead_code)] // kept as the merchant gave it; the current API does not return it
    settlement: Option<t::BankAccount>,
    #[allow(dead_code)] // the current API does not return it either
    logo: Option<String>,
}

#[derive(Debug, Clone)]
struct OrderRecord {
    id: Uuid,
    kind: OrderType,
    business: t::BusinessIdentifier,
    product_type: t::ProductType,
    status: Status,
    url: Option<String>,
    created_at: DateTime<Utc>,
    sales_unit: Option<String>,
    request: Option<t::ProductOrderRequest>,
}

/// Merchants, sales units, product orders and the partner's price packages.
#[derive(Debug)]
pub struct Store {
    partner: t::GetPartnerResponse,
    price_packages: Vec<t::PricePackage>,
    merchants: Vec<t::Merchant>,
    sales_units: Vec<SalesUnitRecord>,
    orders: Vec<OrderRecord>,
    next_msn: u64,
}

/// Converts a string into a constrained generated type; a failure is the sandbox's bug.
fn typed<T>(value: impl Into<String>) -> ApiResult<T>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    let value = value.into();
    T::try_from(value.clone()).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", format!("bad value {value:?}: {e}"))
    })
}

/// [`typed`] for seeded constants.
fn fixed<T>(value: &str) -> T
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    typed(value).expect("a valid seeded value")
}

fn business(scheme: &str, id: &str) -> t::BusinessIdentifier {
    t::BusinessIdentifier { scheme: fixed(scheme), id: fixed(id) }
}

fn seeded_time(s: &str) -> DateTime<Utc> {
    s.parse().expect("a valid seeded timestamp")
}

/// Settings of a new or seeded sales unit.
fn configuration(country: &str, product: t::ProductType, recurring: bool) -> t::SalesUnitConfiguration {
    let payments = product != t::ProductType::Login;
    let norwegian = country == "NO";
    t::SalesUnitConfiguration {
        capture_type: if payments {
            t::SalesUnitConfigurationCaptureType::ReserveCapture
        } else {
            t::SalesUnitConfigurationCaptureType::NotApplicable
        },
        credit_card_payment_allowed: Some(payments),
        customer_must_be_present: None,
        landing_page_phone_number_locked: Some(false),
        late_capture_allowed: Some(norwegian),
        long_living_payment_allowed: Some(false),
        partial_capture_allowed: Some(norwegian),
        payment_allowed: Some(payments),
        recurring_allowed: Some(recurring),
        skip_landing_page_allowed: Some(false),
        userinfo_nin_allowed: None,
    }
}

impl Store {
    /// The seeded partner, price packages, merchants and sales units (see the module
    /// documentation); `msn` is the sandbox's own sales unit, under Fjordkaffe AS.
    pub fn seeded(msn: &str) -> Self {
        use seed::*;
        let partner = t::GetPartnerResponse {
            partner_id: fixed(PARTNER_ID),
            name: "Sandbox Partner AS".into(),
            level: Some(t::GetPartnerResponseLevel::PartnerPremium),
            partner_contact_name: Some("Kari Nordmann".into()),
            partner_contact_email: Some("kari.nordmann@example.com".into()),
            status: Some(t::GetPartnerResponseStatus::Active),
        };
        use t::PricePackageMarket as Market;
        let pi = t::ProductType::PaymentIntegration;
        let price_packages = [
            (PRICE_PACKAGE_NO, "POS standard", "2.99%", pi.clone(), Market::No, true, "30 %"),
            (PRICE_PACKAGE_CHECKOUT_NO, "Checkout NO", "2.49%", t::ProductType::Checkout, Market::No, false, "20 %"),
            (PRICE_PACKAGE_DK, "Betaling DK", "1.45%", pi.clone(), Market::Dk, true, "25 %"),
        ]
        .into_iter()
        .map(|(id, name, description, product, market, visible, commission)| t::PricePackage {
            price_package_id: id.parse().expect("a valid seeded uuid"),
            name: fixed(name),
            description: fixed(description),
            product_type: Some(product),
            market: Some(market),
            visible_in_signup_form: Some(visible),
            commission: Some(commission.into()),
        })
        .collect();
        // (scheme, id, name, active, created, street, post code, city, post box)
        let merchants = [
            (
                NO_ORG,
                FJORDKAFFE_ORG,
                "Fjordkaffe AS",
                true,
                "2021-04-12T08:30:00Z",
                "Bryggen 12",
                "5003",
                "Bergen",
                None,
            ),
            (
                NO_ORG,
                NORDLYS_ORG,
                "Nordlys Sport AS",
                true,
                "2022-09-02T06:45:25Z",
                "Storgata 88",
                "9008",
                "Tromsø",
                Some(("Postboks 123", "9251")),
            ),
            (
                NO_ORG,
                VINTERHAGE_ORG,
                "Vinterhage Blomster AS",
                false,
                "2020-02-17T10:00:00Z",
                "Kongens gate 3",
                "7011",
                "Trondheim",
                None,
            ),
            (
                DK_CVR,
                HAVNENS_CVR,
                "Havnens Bageri ApS",
                true,
                "2023-05-30T12:15:00Z",
                "Nyhavn 17",
                "1051",
                "København K",
                None,
            ),
        ]
        .into_iter()
        .map(|(scheme, id, name, active, created, street, post_code, city, post_box)| {
            let country = country_of(scheme);
            let address = |line: &str, code: &str| t::Address {
                lines: vec![fixed(line)],
                post_code: Some(fixed(code)),
                city: Some(fixed(city)),
                country_code: Some(fixed(country)),
            };
            t::Merchant {
                business_identifier: business(scheme, id),
                name: fixed(name),
                status: if active { t::MerchantStatus::Active } else { t::MerchantStatus::Deactivated },
                created_at: seeded_time(created),
                updated_at: seeded_time(created),
                country_code: fixed(country),
                business_address: Some(address(street, post_code)),
                business_post_address: Some(
                    post_box.map_or_else(|| address(street, post_code), |(l, c)| address(l, c)),
                ),
            }
        })
        .collect();
        // The configured MSN is Fjordkaffe's web shop; the others keep their numbers unless
        // one of them is the configured MSN.
        let mut taken = vec![msn.to_owned()];
        let mut number = |wanted: &str| {
            let mut n: u64 = wanted.parse().expect("a numeric seeded msn");
            while taken.contains(&n.to_string()) {
                n += 1;
            }
            taken.push(n.to_string());
            n.to_string()
        };
        // (msn, name, scheme, id, active, recurring allowed)
        let sales_units = [
            (msn, "Fjordkaffe Nettbutikk", NO_ORG, FJORDKAFFE_ORG, true, true),
            (FJORDKAFFE_BRYGGEN_MSN, "Fjordkaffe Bryggen", NO_ORG, FJORDKAFFE_ORG, true, false),
            (NORDLYS_MSN, "Nordlys Sport", NO_ORG, NORDLYS_ORG, true, false),
            (NORDLYS_MEMBERSHIP_MSN, "Nordlys Sport Medlemskap", NO_ORG, NORDLYS_ORG, true, true),
            (NORDLYS_DEACTIVATED_MSN, "Nordlys Sport Sommerleir", NO_ORG, NORDLYS_ORG, false, false),
            (VINTERHAGE_MSN, "Vinterhage Blomster", NO_ORG, VINTERHAGE_ORG, true, false),
            (HAVNENS_MSN, "Havnens Bageri", DK_CVR, HAVNENS_CVR, true, false),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (wanted, name, scheme, id, active, recurring))| SalesUnitRecord {
            msn: if i == 0 { msn.to_owned() } else { number(wanted) },
            name: name.into(),
            business: business(scheme, id),
            active,
            configuration: configuration(country_of(scheme), pi.clone(), recurring),
            settlement: None,
            logo: None,
        })
        .collect();
        let orders = vec![OrderRecord {
            id: MANUAL_ORDER_ID.parse().expect("a valid seeded uuid"),
            kind: OrderType::Manual,
            business: business(NO_ORG, FJORDKAFFE_ORG),
            product_type: pi,
            status: Status::Completed,
            url: None,
            created_at: seeded_time("2021-04-12T08:30:00Z"),
            sales_unit: Some(msn.to_owned()),
            request: None,
        }];
        Self { partner, price_packages, merchants, sales_units, orders, next_msn: 500_001 }
    }

    /// Marks prefilled orders that waited too long as `EXPIRED`.
    fn expire(&mut self, now: DateTime<Utc>) {
        let lifetime = chrono::Duration::days(PREFILL_LIFETIME_DAYS);
        for order in &mut self.orders {
            if order.kind == OrderType::Prefill
                && matches!(order.status, Status::Received | Status::MerchantViewed)
                && now >= order.created_at + lifetime
            {
                order.status = Status::Expired;
            }
        }
    }

    fn merchant(&self, scheme: &str, id: &str) -> Option<&t::Merchant> {
        self.merchants.iter().find(|m| is(&m.business_identifier, scheme, id))
    }

    fn merchant_or_404(&self, scheme: &str, id: &str) -> ApiResult<&t::Merchant> {
        self.merchant(scheme, id)
            .ok_or_else(|| ApiError::not_found(format!("no merchant {scheme} {id} is connected to the partner")))
    }

    fn merchant_active(&self, b: &t::BusinessIdentifier) -> bool {
        self.merchant(&b.scheme, &b.id).is_some_and(|m| m.status == t::MerchantStatus::Active)
    }

    fn unit(&self, msn: &str) -> Option<&SalesUnitRecord> {
        self.sales_units.iter().find(|u| u.msn == msn)
    }

    /// A sales unit that getMsn may show: it and its merchant are active.
    fn visible_unit(&self, msn: &str) -> ApiResult<&SalesUnitRecord> {
        self.unit(msn)
            .filter(|u| u.active && self.merchant_active(&u.business))
            .ok_or_else(|| ApiError::not_found(format!("no active sales unit {msn} of an active merchant")))
    }

    fn order_index(&self, id: Uuid) -> ApiResult<usize> {
        self.orders.iter().position(|o| o.id == id).ok_or_else(|| ApiError::not_found(format!("no product order {id}")))
    }

    fn prefilled_index(&self, id: Uuid) -> ApiResult<usize> {
        self.orders
            .iter()
            .position(|o| o.id == id && o.kind == OrderType::Prefill)
            .ok_or_else(|| ApiError::not_found(format!("no prefilled product order {id}")))
    }

    fn msn_info(&self, unit: &SalesUnitRecord) -> ApiResult<t::MsnInfo> {
        Ok(t::MsnInfo { msn: typed(unit.msn.clone())?, name: typed(unit.name.clone())? })
    }

    fn order_sales_unit(&self, order: &OrderRecord) -> ApiResult<Option<t::ProductOrderSalesUnit>> {
        let Some(msn) = order.sales_unit.as_deref().filter(|_| order.status == Status::Completed) else {
            return Ok(None);
        };
        let name = self.unit(msn).map(|u| u.name.clone()).unwrap_or_default();
        Ok(Some(t::ProductOrderSalesUnit { msn: typed(msn)?, name }))
    }

    fn v2(&self, order: &OrderRecord) -> ApiResult<t::ProductOrderDetailsResponseV2> {
        Ok(t::ProductOrderDetailsResponseV2 {
            business_identifier: order.business.clone(),
            product_order_id: Some(order.id),
            product_order_type: Some(order.kind.clone()),
            product_order_url: order.url.clone(),
            product_type: Some(order.product_type.clone()),
            sales_unit: self.order_sales_unit(order)?,
            status: order.status.clone(),
        })
    }

    fn v1(&self, order: &OrderRecord) -> ApiResult<t::ProductOrderDetailsResponse> {
        use t::ProductOrderDetailsResponseStatus as V1;
        let status = match order.status {
            Status::Received => V1::Received,
            Status::MerchantViewed => V1::MerchantViewed,
            // v1 has no REJECTED: the guide says a declined order stays ORDER_SUBMITTED.
            Status::OrderSubmitted | Status::Rejected => V1::OrderSubmitted,
            Status::Expired => V1::Expired,
            Status::Completed => V1::Completed,
            // Orders hold statuses the sandbox set itself.
            Status::Unknown(_) => unreachable!("the sandbox stores only statuses it knows"),
        };
        Ok(t::ProductOrderDetailsResponse {
            business_identifier: order.business.clone(),
            product_order_id: Some(order.id),
            product_order_url: order.url.clone(),
            sales_unit: self.order_sales_unit(order)?,
            status,
        })
    }

    fn listed(order: &OrderRecord, include_expired: bool) -> bool {
        include_expired || order.status != Status::Expired
    }

    /// The checks on a product order that need the store or span several fields.
    fn check_order(&self, req: &t::ProductOrderRequest) -> ApiResult<()> {
        let b = &req.business_identifier;
        check_business(&b.scheme, &b.id, "businessIdentifier.scheme", "businessIdentifier.id")?;
        let product = product_type(req.product_type);
        if let Some(id) = req.price_package_id {
            let package = self.price_packages.iter().find(|p| p.price_package_id == id).ok_or_else(|| {
                ApiError::invalid(
                    "pricePackageId",
                    "not one of the partner's price packages (see GET /management/v1/partners/price-packages)",
                )
            })?;
            if let Some(p) = package.product_type.clone().filter(|p| *p != product) {
                return Err(ApiError::invalid(
                    "pricePackageId",
                    format!("the price package is for {p}, not {product}"),
                ));
            }
            let country = country_of(&b.scheme);
            if let Some(m) = package.market.clone().filter(|m| m.to_string() != country) {
                return Err(ApiError::invalid(
                    "pricePackageId",
                    format!("the price package is for the {m} market, the business is in {country}"),
                ));
            }
        }
        if let Some(turnover) = req.annual_turnover {
            if !(0..=999_999_999).contains(&turnover) {
                return Err(ApiError::invalid("annualTurnover", "must be from 0 to 999999999"));
            }
        }
        if let Some(mcc) = req.merchant_category_code {
            if !(0..=9999).contains(&mcc) {
                return Err(ApiError::invalid(
                    "merchantCategoryCode",
                    "must be a four-digit merchant category code (0 to 9999)",
                ));
            }
        }
        if let Some(name) = &req.sales_unit_name {
            if let Some(c) = name.chars().find(|c| !sales_unit_name_char(*c)) {
                return Err(ApiError::invalid(
                    "salesUnitName",
                    format!(
                        "the character {c:?} is not allowed (letters, digits, whitespace and some punctuation only)"
                    ),
                ));
            }
        }
        if let Some(logo) = &req.sales_unit_logo {
            check_logo(logo, "salesUnitLogo")?;
        }
        if let Some(account) = &req.settlement_bank_account {
            let ok = account
                .scheme
                .strip_prefix("BBAN:")
                .is_some_and(|cc| cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase()));
            if !ok {
                return Err(ApiError::invalid(
                    "settlementBankAccount.scheme",
                    "must be BBAN:<country code>, e.g. BBAN:NO (IBAN is not supported)",
                ));
            }
        }
        if let Some(site) = &req.website {
            check_https(&site.url, "website.url")?;
            check_https(&site.terms_url, "website.termsUrl")?;
            if let Some(test) = &site.test_website_url {
                check_https(test.trim(), "website.testWebsiteUrl")?;
            }
        }
        match req.product_use_case {
            Some(t::ProductUseCase::App) if req.app.is_none() => {
                return Err(ApiError::invalid("app", "required when productUseCase is App"));
            }
            Some(use_case @ (t::ProductUseCase::Website | t::ProductUseCase::WebsiteWithTest)) => {
                let site = req.website.as_ref().ok_or_else(|| {
                    ApiError::invalid("website", format!("required when productUseCase is {use_case}"))
                })?;
                if use_case == t::ProductUseCase::WebsiteWithTest && site.test_website_url.is_none() {
                    return Err(ApiError::invalid(
                        "website.testWebsiteUrl",
                        "required when productUseCase is WebsiteWithTest",
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Vipps MobilePay approves a submitted order: a new sales unit, and a new merchant if the
    /// business was not one yet.
    fn approve(&mut self, index: usize, now: DateTime<Utc>) -> ApiResult<()> {
        let order = self.orders[index].clone();
        let b = &order.business;
        let country = country_of(&b.scheme);
        let wanted_name = order.request.as_ref().and_then(|r| r.sales_unit_name.as_ref()).map(|n| n.to_string());
        if self.merchant(&b.scheme, &b.id).is_none() {
            let name = wanted_name.clone().unwrap_or_else(|| format!("Merchant {}", b.id.as_str()));
            self.merchants.push(t::Merchant {
                business_identifier: b.clone(),
                name: typed(name)?,
                status: t::MerchantStatus::Active,
                created_at: now,
                updated_at: now,
                country_code: typed(country)?,
                business_address: None,
                business_post_address: None,
            });
        }
        let merchant_name = self.merchant(&b.scheme, &b.id).map(|m| m.name.to_string()).unwrap_or_default();
        while self.unit(&self.next_msn.to_string()).is_some() {
            self.next_msn += 1;
        }
        let msn = self.next_msn.to_string();
        self.next_msn += 1;
        let request = order.request.as_ref();
        self.sales_units.push(SalesUnitRecord {
            msn: msn.clone(),
            name: wanted_name.unwrap_or(merchant_name),
            business: b.clone(),
            active: true,
            configuration: configuration(
                country,
                order.product_type,
                request.and_then(|r| r.has_recurring).unwrap_or(false),
            ),
            settlement: request.and_then(|r| r.settlement_bank_account.clone()),
            logo: request.and_then(|r| r.sales_unit_logo.as_ref()).map(|l| l.to_string()),
        });
        let order = &mut self.orders[index];
        order.status = Status::Completed;
        order.sales_unit = Some(msn);
        Ok(())
    }
}

fn is(b: &t::BusinessIdentifier, scheme: &str, id: &str) -> bool {
    b.scheme.as_str() == scheme && b.id.as_str() == id
}

/// The country code in a `business:<country>:<type>` scheme.
fn country_of(scheme: &str) -> &str {
    scheme.split(':').nth(1).unwrap_or("")
}

fn product_type(p: t::ProductOrderRequestProductType) -> t::ProductType {
    use t::ProductOrderRequestProductType as R;
    match p {
        R::PaymentIntegration => t::ProductType::PaymentIntegration,
        R::Cashier => t::ProductType::Cashier,
        R::Checkout => t::ProductType::Checkout,
        R::Login => t::ProductType::Login,
        R::Donations => t::ProductType::Donations,
    }
}

/// Checks a business identifier against its scheme's format.
fn check_business(scheme: &str, id: &str, scheme_field: &str, id_field: &str) -> ApiResult<()> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let (ok, rule) = match scheme {
        "business:NO:ORG" => (digits(id, 9), "a Norwegian organisation number is 9 digits"),
        "business:DK:CVR" => (digits(id, 8), "a Danish CVR number is 8 digits"),
        "business:FI:Y-tunnus" => (
            id.split_once('-').is_some_and(|(a, b)| digits(a, 7) && digits(b, 1)),
            "a Finnish Y-tunnus is 7 digits, a hyphen and a check digit",
        ),
        _ => {
            return Err(ApiError::invalid(
                scheme_field,
                format!("unsupported scheme {scheme:?}; use business:NO:ORG, business:DK:CVR or business:FI:Y-tunnus"),
            ))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(id_field, format!("{id:?} is not valid: {rule}")))
    }
}

fn check_msn(msn: &str) -> ApiResult<()> {
    if (4..=10).contains(&msn.len()) && msn.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ApiError::invalid("msn", "must be 4 to 10 digits"))
    }
}

fn check_uuid(value: &str, field: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(value).map_err(|_| ApiError::invalid(field, "must be a UUID"))
}

fn check_logo(logo: &str, field: &str) -> ApiResult<()> {
    base64::engine::general_purpose::STANDARD
        .decode(logo)
        .map(|_| ())
        .map_err(|_| ApiError::invalid(field, "must be a base64-encoded PNG"))
}

fn check_https(url: &str, field: &str) -> ApiResult<()> {
    let rest = url.strip_prefix("https://").unwrap_or("");
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(ApiError::invalid(field, "must be an https:// address"));
    }
    Ok(())
}

/// One character of `salesUnitName`, as the spec's `x-vipps-pattern`
/// `^[\p{L}\p{M}\d\\(\)-_\+\s\.`]+$` allows it. Note that `\)-_` in that class is the range
/// `)` to `_`, which takes in the ASCII digits, upper-case letters and `*,-./:;<=>?@[]^`.
/// Letters and marks are approximated with `char::is_alphabetic` and the combining blocks.
fn sales_unit_name_char(c: char) -> bool {
    let mark =
        matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F);
    c.is_alphabetic()
        || mark
        || c.is_ascii_digit()
        || c.is_whitespace()
        || ('\u{29}'..='\u{5F}').contains(&c)
        || "\\(+.`".contains(c)
}

/// `includeExpired`, named in the error when it does not parse.
#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "includeExpired")]
    include_expired: Option<String>,
}

impl ListQuery {
    fn include_expired(&self) -> ApiResult<bool> {
        match self.include_expired.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::invalid("includeExpired", "must be true or false")),
        }
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/management/v1/merchants", get(get_all_merchants))
        .route("/management/v1/merchants/{scheme}/{id}", get(get_merchant))
        .route("/management/v1/merchants/{scheme}/{id}/contracts", get(get_merchant_contracts))
        .route("/management/v1/merchants/{scheme}/{id}/product-orders", get(get_merchant_product_orders))
        .route("/management/v1/merchants/{scheme}/{id}/sales-units", get(get_merchant_sales_units))
        .route("/management/v1/sales-units", get(get_all_sales_units))
        .route("/management/v1/sales-units/{msn}", get(get_msn).patch(update_msn))
        .route("/management/v1/api-quality/sales-units/{msn}", get(get_api_quality))
        .route("/management/v1/partners/price-packages", get(get_price_packages))
        .route("/management/v1/partners/whoami", get(get_whoami))
        .route("/management/v1/product-orders", post(order_product).get(get_product_orders_v1))
        .route("/management/v1/product-orders/{id}", delete(delete_product_order))
        .route("/management/v1/product-orders/{id}/details", get(get_product_order_details_v1))
        .route("/management/v2/product-orders", get(get_product_orders))
        .route("/management/v2/product-orders/{id}/details", get(get_product_order_details))
        .route("/_sandbox/portal/product-orders/{id}", get(portal_view))
        .route("/_sandbox/portal/product-orders/{id}/submit", post(portal_submit))
        .route("/_sandbox/portal/product-orders/{id}/approve", post(portal_approve))
        .route("/_sandbox/portal/product-orders/{id}/reject", post(portal_reject))
}

type Out<T> = ApiResult<axum::Json<T>>;

async fn get_all_merchants(State(state): State<AppState>) -> Out<t::GetAllMerchantsResponse> {
    let store = lock(&state.management);
    let merchants = store
        .merchants
        .iter()
        .filter(|m| store.sales_units.iter().any(|u| u.business == m.business_identifier))
        .map(|m| {
            Ok(t::MerchantInfo { business_identifier: m.business_identifier.clone(), name: typed(m.name.to_string())? })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(axum::Json(t::GetAllMerchantsResponse { merchants }))
}

async fn get_merchant(
    State(state): State<AppState>,
    Path((scheme, id)): Path<(String, String)>,
) -> Out<t::GetMerchantResponse> {
    check_business(&scheme, &id, "scheme", "id")?;
    let store = lock(&state.management);
    Ok(axum::Json(t::GetMerchantResponse(store.merchant_or_404(&scheme, &id)?.clone())))
}

async fn get_merchant_contracts(
    State(state): State<AppState>,
    Path((scheme, id)): Path<(String, String)>,
) -> Out<t::GetMerchantContractsResponse> {
    check_business(&scheme, &id, "scheme", "id")?;
    let store = lock(&state.management);
    store.merchant_or_404(&scheme, &id)?;
    Ok(axum::Json(t::GetMerchantContractsResponse {
        urls: vec![format!("https://sandbox.invalid/contracts/{id}/merchant-agreement.pdf")],
    }))
}

async fn get_merchant_product_orders(
    State(state): State<AppState>,
    Path((scheme, id)): Path<(String, String)>,
) -> Out<t::GetMerchantProductOrdersResponse> {
    check_business(&scheme, &id, "scheme", "id")?;
    let now = state.now();
    let mut store = lock(&state.management);
    store.expire(now);
    let ids: Vec<Uuid> = store
        .orders
        .iter()
        .filter(|o| o.kind == OrderType::Prefill && is(&o.business, &scheme, &id))
        .map(|o| o.id)
        .collect();
    // A business with prefilled orders but no merchant yet (no agreement signed) still has them.
    if ids.is_empty() {
        store.merchant_or_404(&scheme, &id)?;
    }
    Ok(axum::Json(t::GetMerchantProductOrdersResponse { prefilled_product_order_id: ids }))
}

async fn get_merchant_sales_units(
    State(state): State<AppState>,
    Path((scheme, id)): Path<(String, String)>,
) -> Out<t::GetMsnResponse> {
    check_business(&scheme, &id, "scheme", "id")?;
    let store = lock(&state.management);
    store.merchant_or_404(&scheme, &id)?;
    let units = store
        .sales_units
        .iter()
        .filter(|u| is(&u.business, &scheme, &id))
        .map(|u| store.msn_info(u))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(axum::Json(t::GetMsnResponse(units)))
}

async fn get_all_sales_units(State(state): State<AppState>) -> Out<t::GetMsnResponse> {
    let store = lock(&state.management);
    let units = store
        .sales_units
        .iter()
        .filter(|u| u.active && store.merchant_active(&u.business))
        .map(|u| store.msn_info(u))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(axum::Json(t::GetMsnResponse(units)))
}

async fn get_msn(State(state): State<AppState>, Path(msn): Path<String>) -> Out<t::SalesUnit> {
    check_msn(&msn)?;
    let store = lock(&state.management);
    let unit = store.visible_unit(&msn)?;
    Ok(axum::Json(t::SalesUnit {
        msn: typed(unit.msn.clone())?,
        name: unit.name.clone(),
        business_identifier: unit.business.clone(),
        configuration: unit.configuration.clone(),
        // Proposal fields: not returned by the service yet.
        settlement_bank_account: None,
        changelog: None,
    }))
}

async fn update_msn(
    State(state): State<AppState>,
    Path(msn): Path<String>,
    body: bytes::Bytes,
) -> ApiResult<StatusCode> {
    check_msn(&msn)?;
    let update: t::UpdateMsn = parse_json(&body)?;
    if let Some(name) = &update.name {
        if name.trim().is_empty() {
            return Err(ApiError::invalid("name", "must not be blank"));
        }
    }
    if let Some(logo) = &update.sales_unit_logo {
        check_logo(logo, "salesUnitLogo")?;
    }
    let mut store = lock(&state.management);
    let index = store
        .sales_units
        .iter()
        .position(|u| u.msn == msn && store.merchant_active(&u.business))
        .ok_or_else(|| ApiError::not_found(format!("no sales unit {msn} of an active merchant")))?;
    let unit = &mut store.sales_units[index];
    if let Some(name) = update.name {
        unit.name = name.to_string();
    }
    if let Some(logo) = update.sales_unit_logo {
        unit.logo = Some(logo);
    }
    // A PATCH changes only what it names: no `status`, no change of status.
    if let Some(status) = update.status {
        unit.active = status == t::UpdateMsnStatus::Active;
    }
    Ok(StatusCode::OK)
}

async fn get_api_quality(State(state): State<AppState>, Path(msn): Path<String>) -> Out<t::ApiQualityResponse> {
    check_msn(&msn)?;
    lock(&state.management).visible_unit(&msn)?;
    let item = |endpoint: &str, ok: i64, s400: i64, s401: i64, s404: i64, s429: i64, s500: i64| {
        let total = ok + s400 + s401 + s404 + s429 + s500;
        t::ApiQualityEndpointData {
            endpoint: Some(endpoint.into()),
            total_requests: Some(total as f64),
            success_rate: Some((ok as f64 * 1000.0 / total as f64).round() / 10.0),
            status200: Some(ok),
            status400: Some(s400),
            status401: Some(s401),
            status403: Some(0),
            status404: Some(s404),
            status429: Some(s429),
            status500: Some(s500),
        }
    };
    Ok(axum::Json(t::ApiQualityResponse {
        api_quality_items: vec![
            item("POST:/epayment/v1/payments", 950, 12, 8, 0, 5, 0),
            item("GET:/epayment/v1/payments/{reference}", 4200, 0, 3, 21, 0, 1),
            item("POST:/recurring/v3/agreements", 310, 6, 0, 0, 0, 0),
        ],
    }))
}

async fn get_price_packages(State(state): State<AppState>) -> Out<t::GetPartnerPricePackagesResponse> {
    Ok(axum::Json(t::GetPartnerPricePackagesResponse(lock(&state.management).price_packages.clone())))
}

async fn get_whoami(State(state): State<AppState>) -> Out<t::GetPartnerResponse> {
    Ok(axum::Json(lock(&state.management).partner.clone()))
}

async fn order_product(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<t::ProductOrderRequest>,
) -> ApiResult<(StatusCode, axum::Json<t::ProductOrderResponse>)> {
    // The replay itself is the idempotency middleware's; the key is required and has its own
    // pattern in this API.
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| ApiError::invalid("Idempotency-Key", "the header is required"))?
        .to_str()
        .unwrap_or("");
    if key.is_empty() || key.len() > 50 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(ApiError::invalid("Idempotency-Key", "must be 1 to 50 letters, digits or hyphens"));
    }
    let now = state.now();
    let mut store = lock(&state.management);
    store.check_order(&req)?;
    let id = Uuid::new_v4();
    let url = format!("{}/_sandbox/portal/product-orders/{id}", state.base_url());
    store.orders.push(OrderRecord {
        id,
        kind: OrderType::Prefill,
        business: req.business_identifier.clone(),
        product_type: product_type(req.product_type),
        status: Status::Received,
        url: Some(url.clone()),
        created_at: now,
        sales_unit: None,
        request: Some(req),
    });
    Ok((StatusCode::CREATED, axum::Json(t::ProductOrderResponse { prefilled_order_id: id, prefill_url: url })))
}

async fn delete_product_order(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = check_uuid(&id, "prefilledProductOrderId")?;
    let now = state.now();
    let mut store = lock(&state.management);
    store.expire(now);
    let index = store.prefilled_index(id)?;
    let status = store.orders[index].status.clone();
    if matches!(status, Status::OrderSubmitted | Status::Completed | Status::Rejected) {
        return Err(ApiError::bad_request(format!(
            "product order {id} is {status}: an order the merchant has submitted cannot be deleted"
        )));
    }
    store.orders.remove(index);
    Ok(StatusCode::OK)
}

async fn get_product_orders_v1(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Out<Vec<t::ProductOrderDetailsResponse>> {
    let include_expired = q.include_expired()?;
    let now = state.now();
    let mut store = lock(&state.management);
    store.expire(now);
    let list = store
        .orders
        .iter()
        .filter(|o| o.kind == OrderType::Prefill && Store::listed(o, include_expired))
        .map(|o| store.v1(o))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(axum::Json(list))
}

async fn get_product_order_details_v1(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Out<t::ProductOrderDetailsResponse> {
    let id = check_uuid(&id, "prefilledProductOrderId")?;
    let now = state.now();
    let mut store = lock(&state.management);
    store.expire(now);
    let index = store.prefilled_index(id)?;
    Ok(axum::Json(store.v1(&store.orders[index])?))
}

async fn get_product_orders(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Out<Vec<t::ProductOrderDetailsResponseV2>> {
    let include_expired = q.include_expired()?;
    let now = state.now();
    let mut store = lock(&state.management);
    store.expire(now);
    let list = store
        .orders
        .iter()
        .filter(|o| Store::listed(o, include_expired))
        .map(|o| store.v2(o))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(axum::Json(list))
}

async fn get_product_order_details(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Out<t::ProductOrderDetailsResponseV2> {
    let id = check_uuid(&id, "productOrderId")?;
    let now = state.now();
    let mut store = lock(&state.management);
    store.expire(now);
    let index = store.order_index(id)?;
    Ok(axum::Json(store.v2(&store.orders[index])?))
}

/// The portal routes exist only in test mode.
fn portal(state: &AppState) -> ApiResult<()> {
    if state.config.test_mode {
        Ok(())
    } else {
        Err(ApiError::not_found("no such endpoint in the sandbox"))
    }
}

async fn portal_view(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    portal(&state)?;
    let id = check_uuid(&id, "id")?;
    let now = state.now();
    let mut store = lock(&state.management);
    store.expire(now);
    let index = store.prefilled_index(id)?;
    let order = &mut store.orders[index];
    match order.status {
        Status::Expired => {
            return Err(ApiError::new(StatusCode::GONE, "Gone", "this prefilled product order link has expired"))
        }
        Status::Received => order.status = Status::MerchantViewed,
        _ => {}
    }
    let order = &store.orders[index];
    Ok(axum::Json(serde_json::json!({
        "productOrder": store.v2(order)?,
        "prefilled": order.request,
    })))
}

/// Moves an order from one of `from` to `to`, or answers 409.
fn portal_step(
    state: &AppState,
    id: &str,
    from: &[Status],
    step: &str,
    to: Status,
) -> Out<t::ProductOrderDetailsResponseV2> {
    portal(state)?;
    let id = check_uuid(id, "id")?;
    let now = state.now();
    let mut store = lock(&state.management);
    store.expire(now);
    let index = store.order_index(id)?;
    let status = store.orders[index].status.clone();
    if status == Status::Expired {
        return Err(ApiError::new(StatusCode::GONE, "Gone", "this product order has expired"));
    }
    if !from.contains(&status) {
        return Err(ApiError::conflict(format!("cannot {step} product order {id}: it is {status}")));
    }
    if to == Status::Completed {
        store.approve(index, now)?;
    } else {
        store.orders[index].status = to;
    }
    Ok(axum::Json(store.v2(&store.orders[index])?))
}

async fn portal_submit(State(state): State<AppState>, Path(id): Path<String>) -> Out<t::ProductOrderDetailsResponseV2> {
    portal_step(&state, &id, &[Status::Received, Status::MerchantViewed], "submit", Status::OrderSubmitted)
}

async fn portal_approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Out<t::ProductOrderDetailsResponseV2> {
    portal_step(&state, &id, &[Status::OrderSubmitted], "approve", Status::Completed)
}

async fn portal_reject(State(state): State<AppState>, Path(id): Path<String>) -> Out<t::ProductOrderDetailsResponseV2> {
    portal_step(&state, &id, &[Status::OrderSubmitted], "reject", Status::Rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_data_uses_the_configured_msn_and_moves_a_colliding_one() {
        let store = Store::seeded("223344");
        let fjordkaffe: Vec<_> =
            store.sales_units.iter().filter(|u| u.business.id.as_str() == seed::FJORDKAFFE_ORG).collect();
        assert_eq!(fjordkaffe[0].msn, "223344");
        assert_eq!(fjordkaffe[1].msn, "223345");
        let mut msns: Vec<_> = store.sales_units.iter().map(|u| u.msn.clone()).collect();
        msns.sort();
        msns.dedup();
        assert_eq!(msns.len(), store.sales_units.len(), "every MSN is distinct");
    }

    #[test]
    fn business_identifiers_follow_their_scheme() {
        assert!(check_business("business:NO:ORG", "923456783", "s", "i").is_ok());
        assert!(check_business("business:DK:CVR", "31415926", "s", "i").is_ok());
        assert!(check_business("business:FI:Y-tunnus", "1234567-8", "s", "i").is_ok());
        assert_eq!(check_business("business:NO:ORG", "92345678A", "s", "i").unwrap_err().fields[0].0, "i");
        assert_eq!(check_business("business:NO:ORG", "9876543221", "s", "i").unwrap_err().fields[0].0, "i");
        assert_eq!(check_business("business:SE:ORG", "5560000000", "s", "i").unwrap_err().fields[0].0, "s");
    }

    #[test]
    fn sales_unit_names_follow_the_published_pattern() {
        for ok in ["Fjordkaffe Bryggen", "Kafé Ø 2.0 (Sentrum)", "Bar_Nord-Vest", "A\u{0301}se"] {
            assert!(ok.chars().all(sales_unit_name_char), "{ok}");
        }
        for bad in ["Kaffe & Kake", "Ola's", "Hei!", "50%"] {
            assert!(!bad.chars().all(sales_unit_name_char), "{bad}");
        }
    }

    #[test]
    fn prefilled_orders_expire_after_14_days_unless_submitted() {
        let mut store = Store::seeded("123456");
        let start: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        for (status, n) in [(Status::Received, 1u128), (Status::MerchantViewed, 2), (Status::OrderSubmitted, 3)] {
            store.orders.push(OrderRecord {
                id: Uuid::from_u128(n),
                kind: OrderType::Prefill,
                business: business(seed::NO_ORG, seed::NEW_BUSINESS_ORG),
                product_type: t::ProductType::Login,
                status,
                url: None,
                created_at: start,
                sales_unit: None,
                request: None,
            });
        }
        store.expire(start + chrono::Duration::days(14) - chrono::Duration::seconds(1));
        assert!(store.orders.iter().all(|o| o.status != Status::Expired));
        store.expire(start + chrono::Duration::days(14));
        let statuses: Vec<_> = store.orders.iter().map(|o| o.status.clone()).collect();
        assert_eq!(statuses, [Status::Completed, Status::Expired, Status::Expired, Status::OrderSubmitted]);
    }
}
