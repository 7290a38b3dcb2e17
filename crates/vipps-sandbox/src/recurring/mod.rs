//! Recurring API v3: agreements and charges, with their state machines. The deprecated v2
//! endpoints are not served (they answer 404).
//!
//! # Served operations
//!
//! | operation | method and path | answer |
//! |---|---|---|
//! | ListAgreementsV3 | `GET /recurring/v3/agreements` | 200, `status` (ACTIVE by default), `createdAfter`, `pageNumber`, `pageSize` |
//! | DraftAgreementV3 | `POST /recurring/v3/agreements` | 201 |
//! | CreateChargeAsyncV3 | `POST /recurring/v3/agreements/charges` | 202, valid and invalid charges listed |
//! | FetchAgreementV3 | `GET /recurring/v3/agreements/{agreementId}` | 200 |
//! | UpdateAgreementPatchV3 | `PATCH /recurring/v3/agreements/{agreementId}` | 204 |
//! | acceptUsingPATCHV3 | `PATCH /recurring/v3/agreements/{agreementId}/accept` | 204; 404 unless test mode |
//! | ListChargesV3 | `GET /recurring/v3/agreements/{agreementId}/charges` | 200, `status` filter, `Continuation-Token` paging |
//! | CreateChargeV3 | `POST /recurring/v3/agreements/{agreementId}/charges` | 201 |
//! | FetchChargeV3 | `GET /recurring/v3/agreements/{agreementId}/charges/{chargeId}` | 200 |
//! | CancelChargeV3 | `DELETE /recurring/v3/agreements/{agreementId}/charges/{chargeId}` | 204 |
//! | CaptureChargeV3 | `POST …/charges/{chargeId}/capture` | 204 |
//! | RefundChargeV3 | `POST …/charges/{chargeId}/refund` | 204 |
//! | FetchChargeByIdV3 | `GET /recurring/v3/charges/{chargeId}` | 200 |
//!
//! Operations that change something require an `Idempotency-Key` (400 naming it when it is
//! missing); replays are answered by the shared middleware. Every call must carry
//! `Merchant-Serial-Number` (400 naming it otherwise): the docs make it optional for a merchant
//! acting for itself, but the sandbox asks for it so that a client that forgets it (as a
//! partner must not) finds out offline. Agreements and charges belong to the merchant serial
//! number that created them; another merchant's objects are 404.
//!
//! # Agreements
//!
//! - Draft → **PENDING**, with a `vippsConfirmationUrl` (the sandbox's own landing page,
//!   `{base}/recurring/v3/landing/{agreementId}?token=…`, see [`crate::landing`]; or a
//!   `vipps://` link with `isApp`) and, when `initialCharge` is given, an INITIAL charge in
//!   PENDING whose id is in the answer.
//! - On the landing page the customer approves (as force-accept, with the phone number the
//!   page shows) or rejects: **STOPPED**, `stop` set, the initial charge cancelled.
//! - Force-accept (`PATCH …/accept` with a phone number, test mode only) → **ACTIVE**, `start`
//!   set. The initial charge is processed at once: RESERVE_CAPTURE → RESERVED,
//!   DIRECT_CAPTURE → CHARGED. A VARIABLE agreement gets `maxAmount` = `suggestedMaxAmount`
//!   (the test customer takes the suggestion). With `scope`, `sub` and `userinfoUrl` are set.
//! - A PENDING agreement older than `agreement_pending_timeout` (sandbox clock) is **EXPIRED**
//!   the next time it is read, listed or acted on; its pending initial charge is cancelled.
//! - PATCH with `"status": "STOPPED"` → **STOPPED** (from PENDING or ACTIVE), `stop` set; every
//!   charge still open is released as by a cancel (the docs say stopping does that).
//! - A STOPPED or EXPIRED agreement cannot be updated, accepted or charged: **409**.
//!
//! # Webhooks
//!
//! Every change is delivered, signed, to the webhooks the merchant registered for its event
//! (see [`crate::delivery`]): `recurring.agreement-activated.v1` (accepted, `actor` `USER`),
//! `-rejected.v1` (`USER`), `-stopped.v1` (`MERCHANT`), `-expired.v1` (`SYSTEM`), each with
//! `agreementId`, `agreementUUID`, `agreementExternalId`, `eventType`, `occurred`, `msn`;
//! `recurring.charge-reserved.v1`, `-captured.v1`, `-canceled.v1`, `-refunded.v1`,
//! `-failed.v1` (with `failureReason`), each with `agreementId`, `chargeId`,
//! `chargeExternalId`, `transactionId`, `amount`, `currency`, `chargeType`, `amountCaptured`,
//! `amountCanceled`, `amountRefunded`, `eventType`, `occurred`, `msn`; and
//! `recurring.charge-creation-failed.v1` for each charge a create-multiple request refused.
//! `occurred` is the sandbox clock's time of the change (an expiry or a charge processed on
//! its due date has the time it happened, not the time it was noticed).
//!
//! # Charges
//!
//! Creating a charge needs an ACTIVE agreement (409 otherwise). `amount` must be at least 100
//! (400 naming `amount`). A RECURRING charge (the default `type`) needs `due` (`YYYY-MM-DD`,
//! at least one day after the sandbox's date: the documented test-environment rule) and
//! `retryDays` (0 to 14). An UNSCHEDULED charge needs neither: it is due today. An `orderId`
//! becomes the charge id and must be unique per merchant (409), and, because the response
//! schema limits a charge id to 15 characters, at most 15 characters long (400).
//!
//! Lazy rules, applied whenever a charge (or its list) is read or acted on, by the sandbox
//! date (`state.today()`, UTC):
//!
//! - **PENDING** after creation; **DUE** from [`DUE_NOTICE_DAYS`] day before its due date (so a
//!   charge due tomorrow is DUE at once).
//! - On its due date a DUE charge is processed: RESERVE_CAPTURE → **RESERVED**,
//!   DIRECT_CAPTURE → **CHARGED** (the whole amount captured).
//! - An UNSCHEDULED charge is due today, so it is processed as it is created: a
//!   RESERVE_CAPTURE one is RESERVED in the very answer that creates it.
//! - A charge that cannot be paid stays DUE while it is retried and is **FAILED** once the
//!   sandbox date reaches `due + retryDays` (so with `retryDays: 0`, on its due date). A charge
//!   cannot be paid when the agreement was accepted with [`FAILING_PHONE_NUMBER`]
//!   (`failureReason: user_action_required`), or when it is higher than a VARIABLE
//!   agreement's `maxAmount` (`charge_amount_too_high`). Initial charges never fail.
//! - Capture (RESERVE_CAPTURE only, of a RESERVED or partly captured charge; at least 100 and
//!   at most what is still reserved, else 400 naming `amount`): all of it → **CHARGED**, part
//!   of it → **PARTIALLY_CAPTURED** (capture again for more).
//! - Refund (of CHARGED, PARTIALLY_CAPTURED or PARTIALLY_REFUNDED; at least 100 and at most
//!   captured minus refunded, else 400 naming `amount`): all → **REFUNDED**, part →
//!   **PARTIALLY_REFUNDED**.
//! - Cancel: PENDING, DUE or RESERVED → **CANCELLED**. A PARTIALLY_CAPTURED charge has the rest
//!   of its reservation released and becomes **CHARGED** (for what was captured; `summary`
//!   shows the released amount as `cancelled`). Anything else is 409.
//! - `summary` holds the captured, refunded and cancelled totals; `history` holds one event
//!   per step (CREATE, RESERVE, CAPTURE, REFUND, CANCEL, FAIL) with the request's
//!   `Idempotency-Key` (or a `sandbox-…` key for steps no request caused).
//! - `transactionId` is set from creation (the schema requires ten digits or more).
//! - List charges pages by `charges_page_size`: a page with more to come carries a
//!   `Continuation-Token` (a UUID) header; send it back in the same header for the next page.
//!   Tokens last ten minutes of sandbox time; an unknown one is a 400 naming it.
//!
//! # Simplifications
//!
//! - Charges are processed on their due date as soon as anything looks at them, not by a
//!   batch run; retries are not attempted day by day, only the outcome is computed.
//! - Create-multiple-charges validates and creates synchronously and answers 202 with the
//!   accepted order ids and, per rejected charge, the first error found.
//! - `skipLandingPage: true` is always 403: the sandbox's sales units are not approved for it.
//! - FLEXIBLE pricing is refused (400 naming `pricing.type`): the response schema has no
//!   FLEXIBLE pricing to show it with. A draft without `interval` (or a PATCH to a FLEXIBLE
//!   interval) shows an interval with no unit or count and the text `flexible`.
//! - `merchantRedirectUrl` is limited to 1024 characters (the response schema's limit, though
//!   the request schema allows 2048); it must look like `scheme://…` unless `isApp`.
//!   `merchantAgreementUrl` must be `https://` unless `isApp`, and is required for NO.
//! - `countryCode` defaults from the currency: NOK → NO, DKK → DK, EUR → FI.
//! - An initial charge's `amount` must be at least 100, like every other charge.

mod store;

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, patch, post};
use axum::Router;
use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use uuid::Uuid;
use vipps_recurring::types as rt;

use crate::extract::{parse_json, IdempotencyKey, Json, Path, Query};
use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState};

pub use store::Store;
use store::{Agreement, Charge, Clock, Pricing};

/// A charge becomes DUE this many days before its due date (and is processed on the date).
pub const DUE_NOTICE_DAYS: i64 = 1;

/// The phone number of the test customer whose payments always fail: charges on an agreement
/// force-accepted with it end FAILED with `user_action_required` (after their retry days).
pub const FAILING_PHONE_NUMBER: &str = "4799999999";

/// Where the sandbox's made-up userinfo URLs point (a reserved domain).
const PUBLIC_HOST: &str = "https://sandbox.vipps.invalid";

/// The most charges one create-multiple request may hold.
const MAX_BATCH: usize = 2000;

/// The smallest amount a charge, capture or refund may have, in minor units.
const MIN_AMOUNT: u32 = 100;

pub(crate) fn routes() -> Router<AppState> {
    const CHARGE: &str = "/recurring/v3/agreements/{agreement_id}/charges/{charge_id}";
    Router::new()
        .route("/recurring/v3/agreements", get(list_agreements).post(draft_agreement))
        .route("/recurring/v3/agreements/charges", post(create_charges_async))
        .route("/recurring/v3/agreements/{agreement_id}", get(fetch_agreement).patch(update_agreement))
        .route("/recurring/v3/agreements/{agreement_id}/accept", patch(force_accept))
        .route("/recurring/v3/agreements/{agreement_id}/charges", get(list_charges).post(create_charge))
        .route(CHARGE, get(fetch_charge).delete(cancel_charge))
        .route(&format!("{CHARGE}/capture"), post(capture_charge))
        .route(&format!("{CHARGE}/refund"), post(refund_charge))
        .route("/recurring/v3/charges/{charge_id}", get(fetch_charge_by_id))
}

/// The merchant a request acts for: its `Merchant-Serial-Number`, which the sandbox requires
/// (4 to 10 digits; 400 naming the header otherwise).
struct Merchant(String);

impl<S: Send + Sync> FromRequestParts<S> for Merchant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        crate::extract::msn(&parts.headers).map(Merchant)
    }
}

/// The Recurring store, locked. When the lock is let go, the webhook events of what changed
/// meanwhile go to the delivery queue ([`crate::delivery`]), whatever the handler answers: an
/// agreement that expired while a request failed did expire.
pub(crate) struct Locked<'a> {
    guard: std::sync::MutexGuard<'a, Store>,
    outbox: &'a tokio::sync::mpsc::UnboundedSender<crate::delivery::Outgoing>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.guard
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        for notice in self.guard.take_notices() {
            // Only a started sandbox delivers; for a bare router the event is dropped.
            let _ = self.outbox.send(notice);
        }
    }
}

/// Locks the Recurring store (see [`Locked`]).
pub(crate) fn store(state: &AppState) -> Locked<'_> {
    Locked { guard: lock(&state.recurring), outbox: &state.outbox }
}

pub(crate) fn clock(state: &AppState) -> Clock {
    Clock {
        now: state.now(),
        pending_timeout: Duration::from_std(state.config.agreement_pending_timeout).unwrap_or(Duration::MAX),
    }
}

fn internal(what: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", what.to_string())
}

fn at_least_100(field: &str, amount: u32) -> ApiResult<()> {
    if amount < MIN_AMOUNT {
        return Err(ApiError::invalid(field, format!("must be at least {MIN_AMOUNT} (minor units), got {amount}")));
    }
    Ok(())
}

fn check_count(field: &str, count: u32) -> ApiResult<u32> {
    if !(1..=31).contains(&count) {
        return Err(ApiError::invalid(field, format!("must be between 1 and 31, got {count}")));
    }
    Ok(count)
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// An instant as RFC 3339, also with `/` as the date separator (as one documented example
/// writes it), or a bare date.
fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    let rfc = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc));
    rfc(text).or_else(|| rfc(&text.replace('/', "-"))).or_else(|| parse_date(text).map(midnight))
}

/// A date written exactly as `YYYY-MM-DD`.
fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn add_period(from: DateTime<Utc>, unit: rt::TimePeriodUnit, count: u32) -> Option<DateTime<Utc>> {
    match unit {
        rt::TimePeriodUnit::Day => from.checked_add_signed(Duration::days(i64::from(count))),
        rt::TimePeriodUnit::Week => from.checked_add_signed(Duration::weeks(i64::from(count))),
        rt::TimePeriodUnit::Month => from.checked_add_months(Months::new(count)),
        rt::TimePeriodUnit::Year => from.checked_add_months(Months::new(count.checked_mul(12)?)),
        rt::TimePeriodUnit::Unknown(_) => None,
    }
}

fn check_https(field: &str, url: &str) -> ApiResult<()> {
    if !url.starts_with("https://") || url.len() <= "https://".len() {
        return Err(ApiError::invalid(field, "must be an https:// URL"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Agreements
// ---------------------------------------------------------------------------------------

async fn list_agreements(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<axum::Json<Vec<rt::AgreementResponseV3>>> {
    let status = match query.get("status") {
        None => rt::AgreementStatus::Active,
        Some(s) => s
            .parse::<rt::AgreementStatus>()
            .map_err(|_| ApiError::invalid("status", "must be one of PENDING, ACTIVE, STOPPED, EXPIRED"))?,
    };
    let created_after = match query.get("createdAfter") {
        None => None,
        Some(s) => Some(
            s.parse::<i64>().map_err(|_| ApiError::invalid("createdAfter", "must be a time in epoch milliseconds"))?,
        ),
    };
    let number = |name: &str, default: u32, max: u32| -> ApiResult<u32> {
        match query.get(name) {
            None => Ok(default),
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| ApiError::invalid(name, format!("must be a whole number from 1 to {max}"))),
        }
    };
    let page_number = number("pageNumber", 1, i32::MAX as u32)? as usize;
    let page_size = number("pageSize", 500, 2000)? as usize;

    let clock = clock(&state);
    let mut store = store(&state);
    let mut found = Vec::new();
    for ai in store.agreements_of(&msn) {
        store.settle_agreement(ai, clock);
        let a = store.agreement(ai);
        if a.status == status && created_after.is_none_or(|after| a.created.timestamp_millis() > after) {
            found.push(ai);
        }
    }
    let page = found
        .into_iter()
        .skip((page_number - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|ai| store.agreement_response(ai))
        .collect();
    Ok(axum::Json(page))
}

/// An initial charge that passed the checks.
struct InitialCharge {
    amount: u32,
    description: String,
    transaction_type: rt::TransactionType,
    id: Option<String>,
    external_id: Option<String>,
}

/// The parts of a draft that passed the checks, in the shapes the store keeps.
struct Draft {
    pricing: Pricing,
    interval: Option<(rt::TimePeriodUnit, u32)>,
    campaign: Option<rt::CampaignResponseV3>,
    product_name: rt::AgreementResponseV3ProductName,
    product_description: Option<rt::AgreementResponseV3ProductDescription>,
    redirect_url: rt::AgreementResponseV3MerchantRedirectUrl,
    agreement_url: String,
    external_id: Option<String>,
    country_code: rt::CountryCode,
    initial: Option<InitialCharge>,
}

fn check_pricing(p: &rt::PricingRequest) -> ApiResult<Pricing> {
    match p.type_ {
        rt::PricingRequestType::Legacy => {
            let amount = p.amount.ok_or_else(|| ApiError::invalid("pricing.amount", "required for LEGACY pricing"))?;
            at_least_100("pricing.amount", amount)?;
            Ok(Pricing::Legacy { currency: p.currency.clone(), amount })
        }
        rt::PricingRequestType::Variable => {
            let max = p
                .suggested_max_amount
                .ok_or_else(|| ApiError::invalid("pricing.suggestedMaxAmount", "required for VARIABLE pricing"))?;
            check_suggested_max("pricing.suggestedMaxAmount", max)?;
            Ok(Pricing::Variable { currency: p.currency.clone(), suggested_max: max, max: None })
        }
        rt::PricingRequestType::Flexible => Err(ApiError::invalid(
            "pricing.type",
            "FLEXIBLE pricing is not supported by the sandbox (the agreement response has no FLEXIBLE pricing)",
        )),
    }
}

fn check_suggested_max(field: &str, max: u32) -> ApiResult<()> {
    if !(100..=2_000_000).contains(&max) {
        return Err(ApiError::invalid(field, format!("must be between 100 and 2000000, got {max}")));
    }
    Ok(())
}

fn check_campaign(campaign: &rt::CampaignV3, now: DateTime<Utc>) -> ApiResult<Option<rt::CampaignResponseV3>> {
    Ok(match campaign {
        rt::CampaignV3::Variant0(None) | rt::CampaignV3::Variant1(None) | rt::CampaignV3::Variant2(None) => None,
        rt::CampaignV3::Variant0(Some(c)) => {
            let end = parse_instant(&c.end)
                .ok_or_else(|| ApiError::invalid("campaign.end", "must be a date-time such as 2030-06-01T00:00:00Z"))?;
            Some(rt::CampaignResponseV3::PriceCampaignResponseV3(rt::PriceCampaignResponseV3 {
                end,
                explanation: None,
                price: c.price,
                type_: rt::PriceCampaignResponseV3Type::PriceCampaign,
            }))
        }
        rt::CampaignV3::Variant1(Some(c)) => {
            let count = check_count("campaign.period.count", c.period.count)?;
            let end = add_period(now, c.period.unit.clone(), count)
                .ok_or_else(|| ApiError::invalid("campaign.period", "the period ends too far in the future"))?;
            Some(rt::CampaignResponseV3::PeriodCampaignResponseV3(rt::PeriodCampaignResponseV3 {
                end: end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                explanation: None,
                period: c.period.clone(),
                price: c.price,
                type_: rt::PeriodCampaignResponseV3Type::PeriodCampaign,
            }))
        }
        rt::CampaignV3::Variant2(Some(c)) => {
            Some(rt::CampaignResponseV3::EventCampaignResponseV3(rt::EventCampaignResponseV3 {
                event_date: c.event_date,
                event_text: c.event_text.clone(),
                explanation: None,
                price: c.price,
                type_: rt::EventCampaignResponseV3Type::EventCampaign,
            }))
        }
    })
}

/// An order id that becomes a charge id: it must fit the response's charge id (15
/// characters) as well as the draft response's pattern.
fn charge_id_from_order_id(field: &str, order_id: &str, draft_pattern: bool) -> ApiResult<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if draft_pattern && !order_id.chars().all(allowed) {
        return Err(ApiError::invalid(field, "must match ^[a-zA-Z0-9_-]{1,50}$"));
    }
    if order_id.chars().count() > 15 {
        return Err(ApiError::invalid(
            field,
            "is longer than 15: the charge id it becomes is limited to 15 characters by the published response schema",
        ));
    }
    Ok(order_id.to_owned())
}

fn check_draft(body: &rt::DraftAgreementV3, now: DateTime<Utc>) -> ApiResult<Draft> {
    if body.skip_landing_page {
        return Err(ApiError::forbidden(
            "skipLandingPage needs the sales unit to be approved for it, and the sandbox's sales units are not",
        ));
    }
    let pricing = check_pricing(&body.pricing)?;
    let interval = match &body.interval {
        None => None,
        Some(i) => Some((i.unit.clone(), check_count("interval.count", i.count)?)),
    };
    let campaign = match &body.campaign {
        None => None,
        Some(c) => check_campaign(c, now)?,
    };
    let redirect_url = rt::AgreementResponseV3MerchantRedirectUrl::try_from(body.merchant_redirect_url.to_string())
        .map_err(|e| {
            ApiError::invalid("merchantRedirectUrl", format!("{e} (the agreement response allows 1024 characters)"))
        })?;
    if !body.is_app
        && !body.merchant_redirect_url.split_once("://").is_some_and(|(s, r)| !s.is_empty() && !r.is_empty())
    {
        return Err(ApiError::invalid("merchantRedirectUrl", "must be a URL (https:// or an app deep link)"));
    }
    let country_code = body.country_code.clone().unwrap_or(match pricing.currency() {
        rt::CurrencyV3::Nok => rt::CountryCode::No,
        rt::CurrencyV3::Dkk => rt::CountryCode::Dk,
        rt::CurrencyV3::Eur => rt::CountryCode::Fi,
        rt::CurrencyV3::Unknown(_) => unreachable!("`parse_json` refuses unknown values in requests"),
    });
    let agreement_url = match &body.merchant_agreement_url {
        Some(url) => {
            if !body.is_app {
                check_https("merchantAgreementUrl", url)?;
            }
            url.to_string()
        }
        None if country_code == rt::CountryCode::No => {
            return Err(ApiError::invalid("merchantAgreementUrl", "required for Norwegian merchants (countryCode NO)"))
        }
        None => String::new(),
    };
    if let Some(scope) = &body.scope {
        const KNOWN: [&str; 6] = ["name", "address", "email", "phoneNumber", "birthDate", "nin"];
        if let Some(bad) = scope.split(' ').find(|w| !KNOWN.contains(w)) {
            return Err(ApiError::invalid("scope", format!("unknown scope {bad:?}; use any of {}", KNOWN.join(" "))));
        }
    }
    let product_name = rt::AgreementResponseV3ProductName::try_from(body.product_name.to_string())
        .map_err(|e| ApiError::invalid("productName", e.to_string()))?;
    let product_description = match &body.product_description {
        None => None,
        Some(d) => Some(
            rt::AgreementResponseV3ProductDescription::try_from(d.to_string())
                .map_err(|e| ApiError::invalid("productDescription", e.to_string()))?,
        ),
    };
    let external_id = body.external_id.as_ref().map(|e| e.to_string());
    let initial = match &body.initial_charge {
        None => None,
        Some(ic) => {
            at_least_100("initialCharge.amount", ic.amount)?;
            if ic.description.is_empty() {
                return Err(ApiError::invalid("initialCharge.description", "must not be empty"));
            }
            let id = match &ic.order_id {
                None => None,
                Some(order_id) => Some(charge_id_from_order_id("initialCharge.orderId", order_id, true)?),
            };
            let external_id = ic.external_id.as_ref().map(|e| e.to_string());
            let transaction_type = match ic.transaction_type {
                rt::InitialChargeV3TransactionType::ReserveCapture => rt::TransactionType::ReserveCapture,
                rt::InitialChargeV3TransactionType::DirectCapture => rt::TransactionType::DirectCapture,
            };
            Some(InitialCharge {
                amount: ic.amount,
                description: ic.description.clone(),
                transaction_type,
                id,
                external_id,
            })
        }
    };
    Ok(Draft {
        pricing,
        interval,
        campaign,
        product_name,
        product_description,
        redirect_url,
        agreement_url,
        external_id,
        country_code,
        initial,
    })
}

async fn draft_agreement(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<rt::DraftAgreementV3>,
) -> ApiResult<(StatusCode, axum::Json<rt::DraftAgreementResponseV3>)> {
    let clock = clock(&state);
    let draft = check_draft(&body, clock.now)?;
    let agreement_id = state.id("agr_");
    let id = agreement_id.clone();
    let uuid = Uuid::new_v4();
    let landing_token = Uuid::new_v4().simple().to_string();
    let confirmation_url = if body.is_app {
        format!("vipps://recurring/agreements/{uuid}")
    } else {
        format!("{}/recurring/v3/landing/{agreement_id}?token={landing_token}", state.base_url())
    };
    let generated_charge_id = draft.initial.as_ref().filter(|ic| ic.id.is_none()).map(|_| state.id("chr_"));

    let mut store = store(&state);
    if let Some(id) = draft.initial.as_ref().and_then(|ic| ic.id.as_ref()) {
        if store.charge_exists(&msn, id) {
            return Err(ApiError::conflict(format!("a charge with id {} already exists", id.as_str())));
        }
    }
    let currency = draft.pricing.currency();
    let ai = store.insert_agreement(Agreement {
        msn: msn.clone(),
        id,
        uuid,
        status: rt::AgreementStatus::Pending,
        created: clock.now,
        start: None,
        stop: None,
        pricing: draft.pricing,
        interval: draft.interval,
        campaign: draft.campaign,
        product_name: draft.product_name,
        product_description: draft.product_description,
        merchant_agreement_url: draft.agreement_url,
        merchant_redirect_url: draft.redirect_url,
        external_id: draft.external_id,
        country_code: draft.country_code,
        customer: None,
        scope: body.scope.clone(),
        is_app: body.is_app,
        sub: None,
        confirmation_url: confirmation_url.clone(),
        landing_token,
        phone_number: body.phone_number.as_ref().map(|p| p.to_string()),
        charges: Vec::new(),
        initial_charge: None,
    });
    let mut charge_id = None;
    if let Some(ic) = draft.initial {
        let id = match (ic.id, generated_charge_id) {
            (Some(id), _) => id,
            (None, Some(generated)) => generated,
            (None, None) => return Err(internal("no id for the initial charge")),
        };
        let external_id = match ic.external_id {
            Some(e) => e,
            None => id.clone(),
        };
        charge_id = Some(id.clone());
        let transaction_id = store.next_transaction_id();
        store.insert_charge(
            Charge {
                msn,
                id,
                agreement: ai,
                created: clock.now,
                amount: ic.amount,
                currency,
                description: ic.description,
                due: clock.now.date_naive(),
                retry_days: 0,
                kind: rt::ChargeTypeV3::Initial,
                transaction_type: ic.transaction_type,
                external_id,
                transaction_id,
                status: rt::ChargeStatus::Pending,
                captured: 0,
                refunded: 0,
                cancelled: 0,
                failure: None,
                history: Vec::new(),
            },
            &key,
        );
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(rt::DraftAgreementResponseV3 {
            agreement_id,
            charge_id,
            uuid,
            vipps_confirmation_url: Some(confirmation_url),
        }),
    ))
}

async fn fetch_agreement(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    Path(agreement_id): Path<String>,
) -> ApiResult<axum::Json<rt::AgreementResponseV3>> {
    let clock = clock(&state);
    let mut store = store(&state);
    let ai = store.find_agreement(&msn, &agreement_id)?;
    store.settle_agreement(ai, clock);
    Ok(axum::Json(store.agreement_response(ai)))
}

async fn update_agreement(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    Path(agreement_id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<rt::PatchAgreementV3>,
) -> ApiResult<StatusCode> {
    // Checks that do not depend on the agreement.
    if let Some(p) = &body.pricing {
        if let Some(amount) = p.amount {
            at_least_100("pricing.amount", amount)?;
        }
        if let Some(max) = p.suggested_max_amount {
            check_suggested_max("pricing.suggestedMaxAmount", max)?;
        }
    }
    // None: unchanged; Some(None): flexible; Some(Some(..)): a fixed period.
    let interval = match &body.interval {
        None => None,
        Some(i) => match (i.type_, &i.period) {
            (Some(rt::IntervalUpdateRequestType::Flexible), Some(_)) => {
                return Err(ApiError::invalid("interval.period", "not allowed with interval type FLEXIBLE"))
            }
            (Some(rt::IntervalUpdateRequestType::Flexible), None) => Some(None),
            (Some(rt::IntervalUpdateRequestType::Recurring), None) => {
                return Err(ApiError::invalid("interval.period", "required with interval type RECURRING"))
            }
            (_, Some(p)) => Some(Some((p.unit.clone(), check_count("interval.period.count", p.count)?))),
            (None, None) => None,
        },
    };
    let product_name = match &body.product_name {
        None => None,
        Some(n) => Some(
            rt::AgreementResponseV3ProductName::try_from(n.to_string())
                .map_err(|e| ApiError::invalid("productName", e.to_string()))?,
        ),
    };
    let product_description = match &body.product_description {
        None => None,
        Some(d) => Some(
            rt::AgreementResponseV3ProductDescription::try_from(d.to_string())
                .map_err(|e| ApiError::invalid("productDescription", e.to_string()))?,
        ),
    };
    let external_id = body.external_id.as_ref().map(|e| e.to_string());

    let clock = clock(&state);
    let mut store = store(&state);
    let ai = store.find_agreement(&msn, &agreement_id)?;
    store.settle_agreement(ai, clock);
    store.ensure_changeable(ai)?;
    let a = store.agreement(ai);
    if let Some(url) = &body.merchant_agreement_url {
        if !a.is_app {
            check_https("merchantAgreementUrl", url)?;
        }
    }
    let mut pricing = a.pricing.clone();
    if let Some(p) = &body.pricing {
        match &mut pricing {
            Pricing::Legacy { amount, .. } => {
                if p.suggested_max_amount.is_some() {
                    return Err(ApiError::invalid(
                        "pricing.suggestedMaxAmount",
                        "only for VARIABLE pricing; this agreement is LEGACY",
                    ));
                }
                if let Some(new) = p.amount {
                    *amount = new;
                }
            }
            Pricing::Variable { suggested_max, .. } => {
                if p.amount.is_some() {
                    return Err(ApiError::invalid(
                        "pricing.amount",
                        "only for LEGACY pricing; this agreement is VARIABLE",
                    ));
                }
                if let Some(new) = p.suggested_max_amount {
                    *suggested_max = new;
                }
            }
        }
    }

    // Every check passed: apply.
    let a = store.agreement_mut(ai);
    a.pricing = pricing;
    if let Some(interval) = interval {
        a.interval = interval;
    }
    if let Some(name) = product_name {
        a.product_name = name;
    }
    if let Some(description) = product_description {
        a.product_description = Some(description);
    }
    if let Some(url) = &body.merchant_agreement_url {
        a.merchant_agreement_url = url.to_string();
    }
    if let Some(external_id) = external_id {
        a.external_id = Some(external_id);
    }
    if body.status == Some(rt::PatchAgreementV3Status::Stopped) {
        store.stop(ai, &key, clock);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn force_accept(
    State(state): State<AppState>,
    Path(agreement_id): Path<String>,
    request: Request,
) -> ApiResult<StatusCode> {
    // Outside test mode the endpoint does not exist: 404 before any header is looked at.
    if !state.config.test_mode {
        return Err(ApiError::not_found("force-accept is only available in the test environment"));
    }
    let (mut parts, body) = request.into_parts();
    let Merchant(msn) = Merchant::from_request_parts(&mut parts, &state).await?;
    IdempotencyKey::from_request_parts(&mut parts, &state).await?;
    // The body was read under the sandbox's one limit already (`MAX_BODY_BYTES`).
    let bytes = axum::body::to_bytes(body, crate::MAX_BODY_BYTES)
        .await
        .map_err(|e| ApiError::bad_request(format!("could not read the body: {e}")))?;
    let body: rt::ForceAcceptAgreementV3 = parse_json(&bytes)?;
    let phone = body.phone_number.as_str();
    if phone.is_empty() || phone.len() > 15 || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid("phoneNumber", "must be an MSISDN: up to 15 digits, such as 4712345678"));
    }
    let clock = clock(&state);
    let mut store = store(&state);
    let ai = store.find_agreement(&msn, &agreement_id)?;
    store.settle_agreement(ai, clock);
    store.accept(ai, phone, clock)?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the landing page shows of an agreement, read after any change it made.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    pub msn: String,
    pub product_name: String,
    pub product_description: Option<String>,
    /// `29900 NOK every month`, `up to 50000 NOK every month`.
    pub price: String,
    /// The initial charge: amount, currency and description.
    pub initial: Option<(u32, String, String)>,
    pub status: rt::AgreementStatus,
    pub redirect_url: String,
    pub phone_number: Option<String>,
}

/// The agreement of a landing link, `agreement_id` and its `token`, after applying its expiry;
/// with a decision, the customer's answer applied: approve as force-accept does, for the
/// customer with that phone number; reject to STOPPED (see [`Store::reject`]). Only a PENDING
/// agreement takes an answer (409 otherwise).
pub(crate) fn landing(
    state: &AppState,
    agreement_id: &str,
    token: &str,
    decision: Option<(crate::landing::Decision, &str)>,
) -> ApiResult<Asked> {
    let clock = clock(state);
    let mut store = store(state);
    let ai = store.find_landing(agreement_id, token)?;
    store.settle_agreement(ai, clock);
    match decision {
        None => {}
        Some((crate::landing::Decision::Approve, phone)) => {
            if phone.is_empty() || phone.len() > 15 || !phone.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::invalid("phoneNumber", "must be an MSISDN: up to 15 digits, such as 4712345678"));
            }
            store.accept(ai, phone, clock)?;
        }
        Some((crate::landing::Decision::Reject, _)) => store.reject(ai, clock)?,
    }
    let a = store.agreement(ai);
    let every = store::interval_response(a.interval.clone()).text.unwrap_or_default();
    let price = match &a.pricing {
        Pricing::Legacy { currency, amount } => format!("{} {currency} {every}", money(*amount)),
        Pricing::Variable { currency, suggested_max, max } => {
            format!("up to {} {currency} {every}", money(max.unwrap_or(*suggested_max)))
        }
    };
    let initial = a.initial_charge.map(|ci| {
        let c = store.charge(ci);
        (c.amount, c.currency.to_string(), c.description.clone())
    });
    Ok(Asked {
        msn: a.msn.clone(),
        product_name: a.product_name.to_string(),
        product_description: a.product_description.as_ref().map(|d| d.to_string()),
        price,
        initial,
        status: a.status.clone(),
        redirect_url: a.merchant_redirect_url.to_string(),
        phone_number: a.phone_number.clone(),
    })
}

/// An amount in minor units as `299.00`.
pub(crate) fn money(minor: impl Into<i128>) -> String {
    let minor = minor.into();
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", minor.unsigned_abs() / 100, minor.unsigned_abs() % 100)
}

// ---------------------------------------------------------------------------------------
// Charges
// ---------------------------------------------------------------------------------------

/// The fields of a new charge that passed the checks.
struct NewCharge {
    amount: u32,
    description: String,
    due: NaiveDate,
    retry_days: u32,
    kind: rt::ChargeTypeV3,
    transaction_type: rt::TransactionType,
    id: Option<String>,
    external_id: Option<String>,
}

/// Checks a new charge's fields: amount, due date and retry days by type, order id.
#[allow(clippy::too_many_arguments)]
fn check_charge(
    amount: u32,
    description: &str,
    transaction_type: rt::TransactionType,
    kind: rt::ChargeCreationTypeV3,
    due: Option<NaiveDate>,
    retry_days: Option<u32>,
    order_id: Option<&str>,
    external_id: Option<&str>,
    today: NaiveDate,
) -> ApiResult<NewCharge> {
    at_least_100("amount", amount)?;
    let check_retry = |days: u32| {
        if (0..=14).contains(&days) {
            Ok(days)
        } else {
            Err(ApiError::invalid("retryDays", format!("must be between 0 and 14, got {days}")))
        }
    };
    let (due, retry_days, kind) = match kind {
        rt::ChargeCreationTypeV3::Recurring => {
            let due = due.ok_or_else(|| ApiError::invalid("due", "required for RECURRING charges"))?;
            let earliest = today + Duration::days(1);
            if due < earliest {
                return Err(ApiError::invalid(
                    "due",
                    format!("must be at least one day ahead: {earliest} or later (today is {today})"),
                ));
            }
            let days = retry_days.ok_or_else(|| ApiError::invalid("retryDays", "required for RECURRING charges"))?;
            (due, check_retry(days)?, rt::ChargeTypeV3::Recurring)
        }
        rt::ChargeCreationTypeV3::Unscheduled => {
            (today, check_retry(retry_days.unwrap_or(0))?, rt::ChargeTypeV3::Unscheduled)
        }
    };
    let id = match order_id {
        None => None,
        Some(order_id) => Some(charge_id_from_order_id("orderId", order_id, false)?),
    };
    let external_id = external_id.map(str::to_owned);
    Ok(NewCharge {
        amount,
        description: description.to_owned(),
        due,
        retry_days,
        kind,
        transaction_type,
        id,
        external_id,
    })
}

/// Creates a checked charge on ACTIVE agreement `ai` and brings it up to date (an UNSCHEDULED
/// one is processed at once). Returns the charge id; 409 when the order id is taken.
fn create_on(
    store: &mut Store,
    ai: usize,
    new: NewCharge,
    generated_id: Option<String>,
    key: &str,
    clock: Clock,
) -> ApiResult<String> {
    let msn = store.agreement(ai).msn.clone();
    let id = match (new.id, generated_id) {
        (Some(id), _) => {
            if store.charge_exists(&msn, &id) {
                return Err(ApiError::conflict(format!("a charge with id {} already exists", id.as_str())));
            }
            id
        }
        (None, Some(generated)) => generated,
        (None, None) => return Err(ApiError::invalid("orderId", "required")),
    };
    let external_id = match new.external_id {
        Some(e) => e,
        None => id.clone(),
    };
    let charge_id = id.to_string();
    let status = match new.kind {
        rt::ChargeTypeV3::Unscheduled => rt::ChargeStatus::Due,
        _ => rt::ChargeStatus::Pending,
    };
    let transaction_id = store.next_transaction_id();
    let currency = store.agreement(ai).pricing.currency();
    let ci = store.insert_charge(
        Charge {
            msn,
            id,
            agreement: ai,
            created: clock.now,
            amount: new.amount,
            currency,
            description: new.description,
            due: new.due,
            retry_days: new.retry_days,
            kind: new.kind,
            transaction_type: new.transaction_type,
            external_id,
            transaction_id,
            status,
            captured: 0,
            refunded: 0,
            cancelled: 0,
            failure: None,
            history: Vec::new(),
        },
        key,
    );
    store.settle_charge(ci, clock);
    Ok(charge_id)
}

async fn create_charge(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    Path(agreement_id): Path<String>,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<rt::CreateChargeV3>,
) -> ApiResult<(StatusCode, axum::Json<rt::ChargeReference>)> {
    let clock = clock(&state);
    let new = check_charge(
        body.amount,
        &body.description,
        body.transaction_type,
        body.type_.unwrap_or_default(),
        body.due,
        body.retry_days,
        body.order_id.as_deref().map(String::as_str),
        body.external_id.as_deref().map(String::as_str),
        clock.now.date_naive(),
    )?;
    let generated = new.id.is_none().then(|| state.id("chr_"));
    let mut store = store(&state);
    let ai = store.find_agreement(&msn, &agreement_id)?;
    store.settle_agreement(ai, clock);
    store.ensure_chargeable(ai)?;
    let charge_id = create_on(&mut store, ai, new, generated, &key, clock)?;
    Ok((StatusCode::CREATED, axum::Json(rt::ChargeReference { charge_id: Some(charge_id) })))
}

async fn create_charges_async(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<Vec<rt::CreateChargeAsyncV3>>,
) -> ApiResult<(StatusCode, axum::Json<rt::AsyncChargeResponse>)> {
    if body.len() > MAX_BATCH {
        return Err(ApiError::invalid("body", format!("at most {MAX_BATCH} charges per request, got {}", body.len())));
    }
    // Each charge as the answer echoes it, built before anything changes.
    let echoes = body
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Ok(rt::ChargeBatchItemDto {
                agreement_id: Some(c.agreement_id.clone()),
                amount: c.amount,
                description: c.description.to_string(),
                due: c.due,
                external_id: c.external_id.as_ref().map(|e| e.to_string()),
                order_id: c.order_id.to_string(),
                retry_days: i32::try_from(c.retry_days)
                    .map_err(|_| ApiError::invalid(format!("[{i}].retryDays"), "is too large"))?,
                transaction_type: c.transaction_type.clone(),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let clock = clock(&state);
    let today = clock.now.date_naive();
    let mut store = store(&state);
    let mut answer = rt::AsyncChargeResponse { invalid_charges: Vec::new(), valid_charges: Vec::new() };
    for (c, echo) in body.iter().zip(echoes) {
        let outcome = check_charge(
            c.amount,
            &c.description,
            c.transaction_type.clone(),
            rt::ChargeCreationTypeV3::Recurring,
            Some(c.due),
            Some(c.retry_days),
            Some(&c.order_id),
            c.external_id.as_deref().map(String::as_str),
            today,
        )
        .and_then(|new| {
            let ai = store.find_agreement(&msn, &c.agreement_id)?;
            store.settle_agreement(ai, clock);
            store.ensure_chargeable(ai)?;
            create_on(&mut store, ai, new, None, &key, clock)
        });
        match outcome {
            Ok(id) => answer.valid_charges.push(id),
            Err(e) => {
                store.creation_failed_notice(&msn, &c.agreement_id, &c.order_id, &e.detail, clock.now);
                let invalid = rt::InvalidChargeResponse { charge_batch_item_dto: echo, errors: vec![e.detail] };
                answer.invalid_charges.push(invalid)
            }
        }
    }
    Ok((StatusCode::ACCEPTED, axum::Json(answer)))
}

async fn list_charges(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    Path(agreement_id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<(HeaderMap, axum::Json<Vec<rt::ChargeResponseV3>>)> {
    let status = match query.get("status") {
        None => None,
        Some(s) => Some(s.parse::<rt::ChargeStatus>().map_err(|_| {
            ApiError::invalid(
                "status",
                "must be one of PENDING, DUE, RESERVED, CHARGED, PARTIALLY_CAPTURED, FAILED, CANCELLED, PARTIALLY_REFUNDED, REFUNDED, PROCESSING",
            )
        })?),
    };
    let token = match headers.get("continuation-token") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| Uuid::parse_str(s.trim()).ok())
                .ok_or_else(|| ApiError::invalid("Continuation-Token", "must be a UUID from an earlier answer"))?,
        ),
    };
    let clock = clock(&state);
    let mut store = store(&state);
    let ai = store.find_agreement(&msn, &agreement_id)?;
    store.settle_agreement(ai, clock);
    store.settle_charges(ai, clock);
    let (page, next) = store.page_charges(ai, status, token, state.config.charges_page_size, clock)?;
    let mut out = HeaderMap::new();
    if let Some(next) = next {
        let value = HeaderValue::from_str(&next.to_string()).map_err(internal)?;
        out.insert("continuation-token", value);
    }
    Ok((out, axum::Json(page)))
}

/// Finds charge `charge_id` of agreement `agreement_id` and brings both up to date.
fn settled_charge(store: &mut Store, msn: &str, agreement_id: &str, charge_id: &str, clock: Clock) -> ApiResult<usize> {
    let ai = store.find_agreement(msn, agreement_id)?;
    let ci = store.find_charge_of(ai, charge_id)?;
    store.settle_agreement(ai, clock);
    store.settle_charge(ci, clock);
    Ok(ci)
}

async fn fetch_charge(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    Path((agreement_id, charge_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<rt::ChargeResponseV3>> {
    let clock = clock(&state);
    let mut store = store(&state);
    let ci = settled_charge(&mut store, &msn, &agreement_id, &charge_id, clock)?;
    Ok(axum::Json(store.charge_response(ci)))
}

async fn fetch_charge_by_id(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    Path(charge_id): Path<String>,
) -> ApiResult<axum::Json<rt::ChargeResponseV3>> {
    let clock = clock(&state);
    let mut store = store(&state);
    let ci = store.find_charge(&msn, &charge_id)?;
    let ai = store.charge(ci).agreement;
    store.settle_agreement(ai, clock);
    store.settle_charge(ci, clock);
    Ok(axum::Json(store.charge_response(ci)))
}

async fn cancel_charge(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    Path((agreement_id, charge_id)): Path<(String, String)>,
    IdempotencyKey(key): IdempotencyKey,
) -> ApiResult<StatusCode> {
    let clock = clock(&state);
    let mut store = store(&state);
    let ci = settled_charge(&mut store, &msn, &agreement_id, &charge_id, clock)?;
    store.cancel(ci, &key, clock)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn capture_charge(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    Path((agreement_id, charge_id)): Path<(String, String)>,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<rt::CaptureRequestV3>,
) -> ApiResult<StatusCode> {
    at_least_100("amount", body.amount)?;
    let clock = clock(&state);
    let mut store = store(&state);
    let ci = settled_charge(&mut store, &msn, &agreement_id, &charge_id, clock)?;
    store.capture(ci, body.amount, &key, clock)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn refund_charge(
    State(state): State<AppState>,
    Merchant(msn): Merchant,
    Path((agreement_id, charge_id)): Path<(String, String)>,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<rt::RefundRequest>,
) -> ApiResult<StatusCode> {
    at_least_100("amount", body.amount)?;
    let clock = clock(&state);
    let mut store = store(&state);
    let ci = settled_charge(&mut store, &msn, &agreement_id, &charge_id, clock)?;
    store.refund(ci, body.amount, &key, clock)?;
    Ok(StatusCode::NO_CONTENT)
}
