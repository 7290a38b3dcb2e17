//! The Recurring store: agreements, charges, paging cursors, and the state machines that move
//! them. Nothing here knows about HTTP; the handlers in `mod.rs` check requests, then call in.
//!
//! Every status change that depends on time happens lazily: [`Store::settle_agreement`] and
//! [`Store::settle_charge`] bring one object up to date with a [`Clock`], and the handlers
//! call them before they read or act. The rules are described in the module doc of
//! [`crate::recurring`].

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;
use vipps_recurring::types as rt;

use crate::problem::{ApiError, ApiResult};

use super::{DUE_NOTICE_DAYS, FAILING_PHONE_NUMBER};
use crate::delivery::Outgoing;

/// How long a `Continuation-Token` can be used, by the sandbox clock.
const CURSOR_LIFETIME_MINUTES: i64 = 10;

/// The sandbox time a request is handled at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// Now, by the sandbox clock.
    pub now: DateTime<Utc>,
    /// How long a PENDING agreement waits before it expires.
    pub pending_timeout: Duration,
}

impl Clock {
    fn today(&self) -> NaiveDate {
        self.now.date_naive()
    }
}

/// How an agreement is priced.
#[derive(Debug, Clone)]
pub(crate) enum Pricing {
    /// A fixed price.
    Legacy { currency: rt::CurrencyV3, amount: u32 },
    /// The customer picks a maximum (`max`, set when the agreement is accepted).
    Variable { currency: rt::CurrencyV3, suggested_max: u32, max: Option<u32> },
}

impl Pricing {
    pub(crate) fn currency(&self) -> rt::CurrencyV3 {
        match self {
            Pricing::Legacy { currency, .. } | Pricing::Variable { currency, .. } => currency.clone(),
        }
    }
}

/// One agreement.
#[derive(Debug, Clone)]
pub(crate) struct Agreement {
    pub msn: String,
    pub id: String,
    pub uuid: Uuid,
    pub status: rt::AgreementStatus,
    pub created: DateTime<Utc>,
    pub start: Option<DateTime<Utc>>,
    pub stop: Option<DateTime<Utc>>,
    pub pricing: Pricing,
    /// `None` is a flexible interval.
    pub interval: Option<(rt::TimePeriodUnit, u32)>,
    pub campaign: Option<rt::CampaignResponseV3>,
    pub product_name: rt::AgreementResponseV3ProductName,
    pub product_description: Option<rt::AgreementResponseV3ProductDescription>,
    pub merchant_agreement_url: String,
    pub merchant_redirect_url: rt::AgreementResponseV3MerchantRedirectUrl,
    pub external_id: Option<String>,
    pub country_code: rt::CountryCode,
    /// The phone number of the customer who accepted it.
    pub customer: Option<String>,
    /// The profile data asked for, if any.
    pub scope: Option<String>,
    /// Drafted with `isApp`: URLs are not checked as web URLs.
    pub is_app: bool,
    pub sub: Option<String>,
    pub confirmation_url: String,
    /// The token of the landing page's link (`?token=`), which its form must send back.
    pub landing_token: String,
    /// The phone number the draft named, offered on the landing page.
    pub phone_number: Option<String>,
    /// Indexes into [`Store::charges`], in creation order.
    pub charges: Vec<usize>,
    pub initial_charge: Option<usize>,
}

/// One charge.
#[derive(Debug, Clone)]
pub(crate) struct Charge {
    pub msn: String,
    pub id: String,
    /// Index into [`Store::agreements`].
    pub agreement: usize,
    pub created: DateTime<Utc>,
    pub amount: u32,
    pub currency: rt::CurrencyV3,
    pub description: String,
    pub due: NaiveDate,
    pub retry_days: u32,
    pub kind: rt::ChargeTypeV3,
    pub transaction_type: rt::TransactionType,
    pub external_id: String,
    pub transaction_id: String,
    pub status: rt::ChargeStatus,
    pub captured: u32,
    pub refunded: u32,
    pub cancelled: u32,
    pub failure: Option<(rt::ChargeResponseV3FailureReason, &'static str)>,
    pub history: Vec<rt::ChargeEvent>,
}

impl Charge {
    /// The reserved amount neither captured nor released yet.
    fn open(&self) -> u32 {
        self.amount - self.captured - self.cancelled
    }

    fn event(&mut self, event: rt::ChargeEventEvent, amount: u32, key: &str, at: DateTime<Utc>) {
        self.history.push(rt::ChargeEvent {
            amount,
            event,
            idempotency_key: key.to_owned(),
            occurred: at,
            success: true,
        });
    }

    /// The status that follows from the amounts, once a charge has been reserved or charged.
    fn money_status(&self) -> rt::ChargeStatus {
        use rt::ChargeStatus as S;
        let open = self.open();
        if self.refunded > 0 {
            if self.refunded >= self.captured && open == 0 {
                S::Refunded
            } else {
                S::PartiallyRefunded
            }
        } else if self.captured == 0 {
            if open > 0 {
                S::Reserved
            } else {
                S::Cancelled
            }
        } else if open > 0 {
            S::PartiallyCaptured
        } else {
            S::Charged
        }
    }

    /// A key for an event that no request caused (processing on the due date, expiry).
    fn system_key(&self, what: &str) -> String {
        format!("sandbox-{}-{what}", self.id.as_str())
    }
}

/// Where the next page of a charge list starts.
#[derive(Debug, Clone)]
struct Cursor {
    msn: String,
    agreement: usize,
    /// Position in the agreement's charge list to continue from.
    next: usize,
    expires: DateTime<Utc>,
}

/// Recurring agreements and charges, for every merchant serial number.
#[derive(Debug, Default)]
pub struct Store {
    agreements: Vec<Agreement>,
    agreement_index: HashMap<String, usize>,
    charges: Vec<Charge>,
    /// (merchant serial number, charge id) → index: order ids are unique per merchant.
    charge_index: HashMap<(String, String), usize>,
    cursors: HashMap<Uuid, Cursor>,
    transactions: u64,
    /// Webhook events of the changes made since they were last taken (see [`Store::take_notices`]).
    notices: Vec<Outgoing>,
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

impl Store {
    /// The webhook events (`recurring.agreement-*.v1`, `recurring.charge-*.v1`) of every change
    /// since the last call, oldest first, for [`crate::delivery`].
    pub(crate) fn take_notices(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.notices)
    }

    /// Records an agreement event: `recurring.agreement-<what>.v1`, caused by `actor`.
    fn agreement_notice(&mut self, ai: usize, what: &str, actor: &str, at: DateTime<Utc>) {
        let a = &self.agreements[ai];
        let event = format!("recurring.agreement-{what}.v1");
        let mut body = serde_json::json!({
            "agreementId": a.id.as_str(),
            "agreementUUID": a.uuid.to_string(),
            "eventType": event,
            "occurred": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "actor": actor,
            "msn": a.msn,
        });
        if let Some(external) = &a.external_id {
            body["agreementExternalId"] = serde_json::Value::String(external.to_string());
        }
        self.notices.push(Outgoing { msn: a.msn.clone(), event, body: bytes::Bytes::from(body.to_string()) });
    }

    /// Records a charge event: `recurring.charge-<what>.v1`, with the charge's amounts as they
    /// are after the change.
    fn charge_notice(&mut self, ci: usize, what: &str, at: DateTime<Utc>) {
        let c = &self.charges[ci];
        let a = &self.agreements[c.agreement];
        let event = format!("recurring.charge-{what}.v1");
        let mut body = serde_json::json!({
            "agreementId": a.id.as_str(),
            "chargeId": c.id.as_str(),
            "chargeExternalId": c.external_id.as_str(),
            "eventType": event,
            "occurred": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "transactionId": c.transaction_id.as_str(),
            "amount": c.amount,
            "currency": c.currency.to_string(),
            "chargeType": c.kind.to_string(),
            "amountCaptured": c.captured,
            "amountCanceled": c.cancelled,
            "amountRefunded": c.refunded,
            "msn": c.msn,
        });
        if let Some((reason, _)) = &c.failure {
            body["failureReason"] = serde_json::Value::String(reason.to_string());
        }
        self.notices.push(Outgoing { msn: c.msn.clone(), event, body: bytes::Bytes::from(body.to_string()) });
    }

    /// Records that a charge of a create-multiple request was not created, with why.
    pub(crate) fn creation_failed_notice(
        &mut self,
        msn: &str,
        agreement_id: &str,
        charge_id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) {
        let event = "recurring.charge-creation-failed.v1".to_owned();
        let body = serde_json::json!({
            "agreementId": agreement_id,
            "chargeId": charge_id,
            "eventType": event,
            "occurred": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "failureReason": reason,
            "msn": msn,
        });
        self.notices.push(Outgoing { msn: msn.to_owned(), event, body: bytes::Bytes::from(body.to_string()) });
    }

    /// Every capture and refund of every charge as it stands (charges are settled when they
    /// are read), for the Report API's ledgers; in no particular order.
    pub(crate) fn money_events(&self) -> Vec<crate::report::MoneyEvent> {
        self.charges
            .iter()
            .flat_map(|c| {
                c.history.iter().enumerate().filter_map(move |(i, e)| {
                    let captured = match e.event {
                        rt::ChargeEventEvent::Capture => true,
                        rt::ChargeEventEvent::Refund => false,
                        _ => return None,
                    };
                    Some(crate::report::MoneyEvent {
                        msn: c.msn.clone(),
                        reference: c.id.to_string(),
                        psp_reference: c.transaction_id.to_string(),
                        currency: c.currency.to_string(),
                        at: e.occurred,
                        index: i,
                        captured,
                        value: i64::from(e.amount),
                    })
                })
            })
            .collect()
    }

    /// Brings every agreement and charge up to date with the clock: expires PENDING agreements
    /// older than `pending_timeout`, moves charges from PENDING to DUE, and processes the ones
    /// whose due date has come. The handlers do this lazily for what they touch; this does it
    /// for everything, for tests that look inside the store.
    pub fn process_due(&mut self, now: DateTime<Utc>, pending_timeout: std::time::Duration) {
        let clock = Clock { now, pending_timeout: Duration::from_std(pending_timeout).unwrap_or(Duration::MAX) };
        for ai in 0..self.agreements.len() {
            self.settle_agreement(ai, clock);
            self.settle_charges(ai, clock);
        }
    }

    /// How many agreements the store holds, over all merchants.
    pub fn agreement_count(&self) -> usize {
        self.agreements.len()
    }

    /// How many charges the store holds, over all merchants and agreements.
    pub fn charge_count(&self) -> usize {
        self.charges.len()
    }

    pub(crate) fn agreement(&self, ai: usize) -> &Agreement {
        &self.agreements[ai]
    }

    pub(crate) fn charge(&self, ci: usize) -> &Charge {
        &self.charges[ci]
    }

    /// The agreement `id` of merchant `msn`, or 404.
    pub(crate) fn find_agreement(&self, msn: &str, id: &str) -> ApiResult<usize> {
        self.agreement_index
            .get(id)
            .copied()
            .filter(|&ai| self.agreements[ai].msn == msn)
            .ok_or_else(|| ApiError::not_found(format!("no agreement with id {id}")))
    }

    /// The agreement of a landing link, whatever its merchant: 404 for an unknown id, 403 when
    /// `token` is not the link's.
    pub(crate) fn find_landing(&self, id: &str, token: &str) -> ApiResult<usize> {
        let ai = self
            .agreement_index
            .get(id)
            .copied()
            .ok_or_else(|| ApiError::not_found(format!("no agreement with id {id}")))?;
        if !crate::landing::same_token(&self.agreements[ai].landing_token, token) {
            return Err(ApiError::forbidden(
                "the link's token does not match this agreement; open the vippsConfirmationUrl as it was given",
            ));
        }
        Ok(ai)
    }

    /// The charge `charge_id` of merchant `msn`, or 404.
    pub(crate) fn find_charge(&self, msn: &str, charge_id: &str) -> ApiResult<usize> {
        self.charge_index
            .get(&(msn.to_owned(), charge_id.to_owned()))
            .copied()
            .ok_or_else(|| ApiError::not_found(format!("no charge with id {charge_id}")))
    }

    /// The charge `charge_id` of agreement `ai`, or 404.
    pub(crate) fn find_charge_of(&self, ai: usize, charge_id: &str) -> ApiResult<usize> {
        let msn = &self.agreements[ai].msn;
        self.find_charge(msn, charge_id).and_then(|ci| {
            if self.charges[ci].agreement == ai {
                Ok(ci)
            } else {
                Err(ApiError::not_found(format!(
                    "no charge with id {charge_id} on agreement {}",
                    self.agreements[ai].id.as_str()
                )))
            }
        })
    }

    /// Whether merchant `msn` already has a charge with this id.
    pub(crate) fn charge_exists(&self, msn: &str, charge_id: &str) -> bool {
        self.charge_index.contains_key(&(msn.to_owned(), charge_id.to_owned()))
    }

    /// Indexes of merchant `msn`'s agreements, oldest first.
    pub(crate) fn agreements_of(&self, msn: &str) -> Vec<usize> {
        (0..self.agreements.len()).filter(|&ai| self.agreements[ai].msn == msn).collect()
    }

    /// A new payment transaction id: ten digits or more, as the response pattern wants.
    pub(crate) fn next_transaction_id(&mut self) -> String {
        self.transactions += 1;
        format!("50{:08}", self.transactions)
    }

    /// Stores a new agreement and returns its index.
    pub(crate) fn insert_agreement(&mut self, agreement: Agreement) -> usize {
        let ai = self.agreements.len();
        self.agreement_index.insert(agreement.id.to_string(), ai);
        self.agreements.push(agreement);
        ai
    }

    /// Stores a new charge on its agreement (with a CREATE event) and returns its index.
    pub(crate) fn insert_charge(&mut self, mut charge: Charge, key: &str) -> usize {
        let ci = self.charges.len();
        let (amount, created) = (charge.amount, charge.created);
        charge.event(rt::ChargeEventEvent::Create, amount, key, created);
        self.charge_index.insert((charge.msn.clone(), charge.id.to_string()), ci);
        let ai = charge.agreement;
        let initial = charge.kind == rt::ChargeTypeV3::Initial;
        self.charges.push(charge);
        self.agreements[ai].charges.push(ci);
        if initial {
            self.agreements[ai].initial_charge = Some(ci);
        }
        ci
    }

    /// Expires agreement `ai` if it has been PENDING for longer than the timeout; its initial
    /// charge, if still pending, is cancelled with it.
    pub(crate) fn settle_agreement(&mut self, ai: usize, clock: Clock) {
        let a = &mut self.agreements[ai];
        if a.status != rt::AgreementStatus::Pending {
            return;
        }
        let deadline = a.created.checked_add_signed(clock.pending_timeout).unwrap_or(DateTime::<Utc>::MAX_UTC);
        if clock.now < deadline {
            return;
        }
        a.status = rt::AgreementStatus::Expired;
        let initial = a.initial_charge;
        self.agreement_notice(ai, "expired", "SYSTEM", deadline);
        if let Some(ci) = initial {
            self.release(ci, None, deadline);
        }
    }

    /// Settles every charge of agreement `ai`.
    pub(crate) fn settle_charges(&mut self, ai: usize, clock: Clock) {
        for k in 0..self.agreements[ai].charges.len() {
            let ci = self.agreements[ai].charges[k];
            self.settle_charge(ci, clock);
        }
    }

    /// Moves charge `ci` on by the clock: PENDING → DUE from [`DUE_NOTICE_DAYS`] before the due
    /// date; DUE → RESERVED or CHARGED on the due date; or, for a charge that cannot be paid,
    /// DUE (retrying) until `retryDays` after the due date and then FAILED. Only charges of
    /// ACTIVE agreements move; initial charges move when the agreement is accepted instead.
    pub(crate) fn settle_charge(&mut self, ci: usize, clock: Clock) {
        use rt::ChargeStatus as S;
        let c = &self.charges[ci];
        if c.kind == rt::ChargeTypeV3::Initial || self.agreements[c.agreement].status != rt::AgreementStatus::Active {
            return;
        }
        let today = clock.today();
        if c.status == S::Pending && today >= c.due - Duration::days(DUE_NOTICE_DAYS) {
            self.charges[ci].status = S::Due;
        }
        let c = &self.charges[ci];
        if c.status != S::Due || today < c.due {
            return;
        }
        let attempt = midnight(c.due).max(c.created);
        match self.failure_for(ci) {
            None => self.process(ci, attempt),
            Some(failure) => {
                let c = &mut self.charges[ci];
                let last_try = c.due + Duration::days(i64::from(c.retry_days));
                if today >= last_try {
                    let at = midnight(last_try).max(c.created);
                    let key = c.system_key("fail");
                    let amount = c.amount;
                    c.status = S::Failed;
                    c.failure = Some(failure);
                    c.history.push(rt::ChargeEvent {
                        amount,
                        event: rt::ChargeEventEvent::Fail,
                        idempotency_key: key,
                        occurred: at,
                        success: false,
                    });
                    self.charge_notice(ci, "failed", at);
                }
            }
        }
    }

    /// Why charge `ci` cannot be paid, if it cannot: the agreement was accepted with
    /// [`FAILING_PHONE_NUMBER`], or the amount is above a variable agreement's maximum.
    fn failure_for(&self, ci: usize) -> Option<(rt::ChargeResponseV3FailureReason, &'static str)> {
        let c = &self.charges[ci];
        let a = &self.agreements[c.agreement];
        if a.customer.as_deref() == Some(FAILING_PHONE_NUMBER) {
            return Some((rt::ChargeResponseV3FailureReason::UserActionRequired, "User action required"));
        }
        if let Pricing::Variable { max: Some(max), .. } = a.pricing {
            if c.amount > max {
                return Some((rt::ChargeResponseV3FailureReason::ChargeAmountTooHigh, "Charge amount too high"));
            }
        }
        None
    }

    /// Pays charge `ci`: reserves a RESERVE_CAPTURE charge, captures a DIRECT_CAPTURE one.
    fn process(&mut self, ci: usize, at: DateTime<Utc>) {
        let c = &mut self.charges[ci];
        let amount = c.amount;
        match c.transaction_type {
            rt::TransactionType::ReserveCapture => {
                let key = c.system_key("reserve");
                c.status = rt::ChargeStatus::Reserved;
                c.event(rt::ChargeEventEvent::Reserve, amount, &key, at);
                self.charge_notice(ci, "reserved", at);
            }
            rt::TransactionType::DirectCapture => {
                let key = c.system_key("capture");
                c.captured = amount;
                c.status = rt::ChargeStatus::Charged;
                c.event(rt::ChargeEventEvent::Capture, amount, &key, at);
                self.charge_notice(ci, "captured", at);
            }
            // `parse_json` refuses unknown values in requests.
            rt::TransactionType::Unknown(_) => unreachable!("charges hold only known transaction types"),
        }
    }

    /// Releases what charge `ci` has not captured: PENDING, DUE and RESERVED become CANCELLED,
    /// a partly captured charge keeps what was captured (see [`Charge::money_status`]).
    /// Returns false when there was nothing to release.
    fn release(&mut self, ci: usize, key: Option<&str>, at: DateTime<Utc>) -> bool {
        use rt::ChargeStatus as S;
        let c = &mut self.charges[ci];
        let key = key.map(str::to_owned).unwrap_or_else(|| c.system_key("cancel"));
        match c.status {
            S::Pending | S::Due | S::Processing => {
                let open = c.open();
                c.cancelled += open;
                c.status = S::Cancelled;
                c.event(rt::ChargeEventEvent::Cancel, open, &key, at);
                self.charge_notice(ci, "canceled", at);
                true
            }
            S::Reserved | S::PartiallyCaptured | S::PartiallyRefunded if c.open() > 0 => {
                let open = c.open();
                c.cancelled += open;
                c.status = c.money_status();
                c.event(rt::ChargeEventEvent::Cancel, open, &key, at);
                self.charge_notice(ci, "canceled", at);
                true
            }
            _ => false,
        }
    }

    /// Force-accepts PENDING agreement `ai` for the customer with `phone`: ACTIVE, and the
    /// initial charge (if any, and not cancelled) is reserved or charged at once.
    pub(crate) fn accept(&mut self, ai: usize, phone: &str, clock: Clock) -> ApiResult<()> {
        let a = &mut self.agreements[ai];
        if a.status != rt::AgreementStatus::Pending {
            return Err(ApiError::conflict(format!(
                "agreement {} is {}; only a PENDING agreement can be accepted",
                a.id.as_str(),
                a.status
            )));
        }
        a.status = rt::AgreementStatus::Active;
        a.start = Some(clock.now);
        a.customer = Some(phone.to_owned());
        if a.scope.is_some() {
            a.sub = Some(Uuid::new_v4().to_string());
        }
        if let Pricing::Variable { suggested_max, max, .. } = &mut a.pricing {
            // The test customer takes the suggested maximum.
            *max = Some(*suggested_max);
        }
        let initial = a.initial_charge;
        self.agreement_notice(ai, "activated", "USER", clock.now);
        if let Some(ci) = initial {
            if self.charges[ci].status == rt::ChargeStatus::Pending {
                self.process(ci, clock.now);
            }
        }
        Ok(())
    }

    /// Fails with 409 unless agreement `ai` can still be changed (PENDING or ACTIVE).
    pub(crate) fn ensure_changeable(&self, ai: usize) -> ApiResult<()> {
        let a = &self.agreements[ai];
        match &a.status {
            rt::AgreementStatus::Pending | rt::AgreementStatus::Active => Ok(()),
            other => Err(ApiError::conflict(format!(
                "agreement {} is {other}; a stopped or expired agreement cannot be changed",
                a.id.as_str()
            ))),
        }
    }

    /// Fails with 409 unless agreement `ai` is ACTIVE, the only status that can be charged.
    pub(crate) fn ensure_chargeable(&self, ai: usize) -> ApiResult<()> {
        let a = &self.agreements[ai];
        if a.status == rt::AgreementStatus::Active {
            Ok(())
        } else {
            Err(ApiError::conflict(format!(
                "agreement {} is {}; charges can only be created on an ACTIVE agreement",
                a.id.as_str(),
                a.status
            )))
        }
    }

    /// Stops agreement `ai` for good and releases every charge it still has open.
    pub(crate) fn stop(&mut self, ai: usize, key: &str, clock: Clock) {
        let a = &mut self.agreements[ai];
        a.status = rt::AgreementStatus::Stopped;
        a.stop = Some(clock.now);
        self.agreement_notice(ai, "stopped", "MERCHANT", clock.now);
        self.release_all(ai, key, clock);
    }

    /// The customer rejects PENDING agreement `ai` on its landing page: it is STOPPED (the
    /// status the API shows for an agreement the user said no to), its initial charge
    /// cancelled, and `recurring.agreement-rejected.v1` sent.
    pub(crate) fn reject(&mut self, ai: usize, clock: Clock) -> ApiResult<()> {
        let a = &mut self.agreements[ai];
        if a.status != rt::AgreementStatus::Pending {
            return Err(ApiError::conflict(format!(
                "agreement {} is {}; only a PENDING agreement can be rejected",
                a.id.as_str(),
                a.status
            )));
        }
        a.status = rt::AgreementStatus::Stopped;
        a.stop = Some(clock.now);
        let key = format!("sandbox-{}-reject", a.id.as_str());
        self.agreement_notice(ai, "rejected", "USER", clock.now);
        self.release_all(ai, &key, clock);
        Ok(())
    }

    /// Releases every charge of agreement `ai` that still holds something open.
    fn release_all(&mut self, ai: usize, key: &str, clock: Clock) {
        for k in 0..self.agreements[ai].charges.len() {
            let ci = self.agreements[ai].charges[k];
            self.release(ci, Some(key), clock.now);
        }
    }

    /// Mutable access for the update handler, after its checks.
    pub(crate) fn agreement_mut(&mut self, ai: usize) -> &mut Agreement {
        &mut self.agreements[ai]
    }

    /// Cancels charge `ci` (DELETE).
    pub(crate) fn cancel(&mut self, ci: usize, key: &str, clock: Clock) -> ApiResult<()> {
        if self.release(ci, Some(key), clock.now) {
            Ok(())
        } else {
            let c = &self.charges[ci];
            Err(ApiError::conflict(format!(
                "charge {} is {}; only PENDING, DUE, RESERVED or partly captured charges can be cancelled",
                c.id.as_str(),
                c.status
            )))
        }
    }

    /// Captures `amount` of RESERVE_CAPTURE charge `ci`.
    pub(crate) fn capture(&mut self, ci: usize, amount: u32, key: &str, clock: Clock) -> ApiResult<()> {
        use rt::ChargeStatus as S;
        let c = &mut self.charges[ci];
        if c.transaction_type != rt::TransactionType::ReserveCapture {
            return Err(ApiError::conflict(format!(
                "charge {} is DIRECT_CAPTURE; only RESERVE_CAPTURE charges can be captured",
                c.id.as_str()
            )));
        }
        let open = c.open();
        if !matches!(c.status, S::Reserved | S::PartiallyCaptured | S::PartiallyRefunded) || open == 0 {
            return Err(ApiError::conflict(format!(
                "charge {} is {}; only a RESERVED or partly captured charge can be captured",
                c.id.as_str(),
                c.status
            )));
        }
        if amount > open {
            return Err(ApiError::invalid("amount", format!("{amount} is more than the {open} still reserved")));
        }
        c.captured += amount;
        c.status = c.money_status();
        c.event(rt::ChargeEventEvent::Capture, amount, key, clock.now);
        self.charge_notice(ci, "captured", clock.now);
        Ok(())
    }

    /// Refunds `amount` of what charge `ci` has captured.
    pub(crate) fn refund(&mut self, ci: usize, amount: u32, key: &str, clock: Clock) -> ApiResult<()> {
        use rt::ChargeStatus as S;
        let c = &mut self.charges[ci];
        let refundable = c.captured - c.refunded;
        if !matches!(c.status, S::Charged | S::PartiallyCaptured | S::PartiallyRefunded) || refundable == 0 {
            return Err(ApiError::conflict(format!(
                "charge {} is {}; only a charged or captured amount can be refunded",
                c.id.as_str(),
                c.status
            )));
        }
        if amount > refundable {
            return Err(ApiError::invalid(
                "amount",
                format!("{amount} is more than the {refundable} captured and not yet refunded"),
            ));
        }
        c.refunded += amount;
        c.status = c.money_status();
        c.event(rt::ChargeEventEvent::Refund, amount, key, clock.now);
        self.charge_notice(ci, "refunded", clock.now);
        Ok(())
    }

    /// One page of agreement `ai`'s charges (those with `status`, if given), and the token for
    /// the next page when there is more. `token` continues an earlier listing.
    pub(crate) fn page_charges(
        &mut self,
        ai: usize,
        status: Option<rt::ChargeStatus>,
        token: Option<Uuid>,
        page_size: usize,
        clock: Clock,
    ) -> ApiResult<(Vec<rt::ChargeResponseV3>, Option<Uuid>)> {
        self.cursors.retain(|_, c| c.expires > clock.now);
        let start = match token {
            None => 0,
            Some(token) => {
                let cursor = self.cursors.get(&token).ok_or_else(|| {
                    ApiError::invalid("Continuation-Token", "unknown or expired token; start the listing again")
                })?;
                if cursor.agreement != ai || cursor.msn != self.agreements[ai].msn {
                    return Err(ApiError::invalid("Continuation-Token", "the token belongs to another listing"));
                }
                cursor.next
            }
        };
        let list = &self.agreements[ai].charges;
        let matches = |ci: usize| status.as_ref().is_none_or(|s| &self.charges[ci].status == s);
        let mut page = Vec::new();
        let mut next = None;
        for (pos, &ci) in list.iter().enumerate().skip(start) {
            if !matches(ci) {
                continue;
            }
            if page.len() == page_size.max(1) {
                next = Some(pos);
                break;
            }
            page.push(self.charge_response(ci));
        }
        let token = next.map(|pos| {
            let token = Uuid::new_v4();
            let cursor = Cursor {
                msn: self.agreements[ai].msn.clone(),
                agreement: ai,
                next: pos,
                expires: clock.now + Duration::minutes(CURSOR_LIFETIME_MINUTES),
            };
            self.cursors.insert(token, cursor);
            token
        });
        Ok((page, token))
    }

    /// Agreement `ai` as the API shows it.
    pub(crate) fn agreement_response(&self, ai: usize) -> rt::AgreementResponseV3 {
        let a = &self.agreements[ai];
        let pricing = match &a.pricing {
            Pricing::Legacy { currency, amount } => {
                rt::PricingResponse::LegacyPricingResponse(rt::LegacyPricingResponse {
                    amount: *amount,
                    currency: currency.clone(),
                    type_: rt::LegacyPricingResponseType::Legacy,
                })
            }
            Pricing::Variable { currency, suggested_max, max } => {
                rt::PricingResponse::VariableAmountPricingResponse(rt::VariableAmountPricingResponse {
                    currency: currency.clone(),
                    max_amount: *max,
                    suggested_max_amount: *suggested_max,
                    type_: rt::VariableAmountPricingResponseType::Variable,
                })
            }
        };
        rt::AgreementResponseV3 {
            campaign: a.campaign.clone(),
            country_code: a.country_code.clone(),
            created: a.created,
            external_id: a.external_id.clone(),
            id: a.id.clone(),
            interval: interval_response(a.interval.clone()),
            merchant_agreement_url: a.merchant_agreement_url.clone(),
            merchant_redirect_url: a.merchant_redirect_url.clone(),
            pricing,
            product_description: a.product_description.clone(),
            product_name: a.product_name.clone(),
            start: a.start,
            status: Some(a.status.clone()),
            stop: a.stop,
            sub: a.sub.clone(),
            userinfo_url: a.sub.as_ref().map(|sub| format!("{}/vipps-userinfo-api/userinfo/{sub}", super::PUBLIC_HOST)),
            uuid: a.uuid,
            vipps_confirmation_url: Some(a.confirmation_url.clone()),
        }
    }

    /// Charge `ci` as the API shows it.
    pub(crate) fn charge_response(&self, ci: usize) -> rt::ChargeResponseV3 {
        let c = &self.charges[ci];
        let a = &self.agreements[c.agreement];
        rt::ChargeResponseV3 {
            agreement_id: a.id.to_string(),
            amount: c.amount,
            currency: c.currency.clone(),
            description: c.description.clone(),
            due: midnight(c.due),
            external_agreement_id: a
                .external_id
                .as_ref()
                .map(|e| e.to_string()),
            external_id: c.external_id.clone(),
            failure_description: c.failure.clone().map(|(_, text)| text.to_owned()),
            failure_reason: c.failure.clone().map(|(reason, _)| reason),
            history: rt::ChargeHistory(c.history.clone()),
            id: c.id.clone(),
            retry_days: c.retry_days,
            status: c.status.clone(),
            summary: rt::ChargeSummary { cancelled: c.cancelled, captured: c.captured, refunded: c.refunded },
            transaction_id: c.transaction_id.clone(),
            transaction_type: c.transaction_type.clone(),
            type_: c.kind.clone(),
        }
    }
}

/// The interval as the API shows it; a flexible interval has no unit or count.
pub(crate) fn interval_response(interval: Option<(rt::TimePeriodUnit, u32)>) -> rt::TimePeriodResponse {
    let Some((unit, count)) = interval else {
        return rt::TimePeriodResponse { count: None, text: Some("flexible".into()), unit: None };
    };
    let (response_unit, word) = match unit {
        rt::TimePeriodUnit::Year => (rt::TimePeriodResponseUnit::Year, "year"),
        rt::TimePeriodUnit::Month => (rt::TimePeriodResponseUnit::Month, "month"),
        rt::TimePeriodUnit::Week => (rt::TimePeriodResponseUnit::Week, "week"),
        rt::TimePeriodUnit::Day => (rt::TimePeriodResponseUnit::Day, "day"),
        rt::TimePeriodUnit::Unknown(_) => unreachable!("agreements hold only known units"),
    };
    let text = if count == 1 { format!("every {word}") } else { format!("every {count} {word}s") };
    rt::TimePeriodResponse { count: i32::try_from(count).ok(), text: Some(text), unit: Some(response_unit) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        midnight(NaiveDate::from_ymd_opt(2030, 1, 10).unwrap()) + Duration::hours(12)
    }

    fn clock_at(now: DateTime<Utc>) -> Clock {
        Clock { now, pending_timeout: Duration::minutes(10) }
    }

    fn agreement(store: &mut Store) -> usize {
        store.insert_agreement(Agreement {
            msn: "123456".into(),
            id: "agr_1".to_owned(),
            uuid: Uuid::new_v4(),
            status: rt::AgreementStatus::Pending,
            created: now(),
            start: None,
            stop: None,
            pricing: Pricing::Legacy { currency: rt::CurrencyV3::Nok, amount: 1000 },
            interval: Some((rt::TimePeriodUnit::Month, 1)),
            campaign: None,
            product_name: rt::AgreementResponseV3ProductName::try_from("P").unwrap(),
            product_description: None,
            merchant_agreement_url: "https://example.com/a".into(),
            merchant_redirect_url: rt::AgreementResponseV3MerchantRedirectUrl::try_from("https://example.com/r")
                .unwrap(),
            external_id: None,
            country_code: rt::CountryCode::No,
            customer: None,
            scope: None,
            is_app: false,
            sub: None,
            confirmation_url: "https://example.com/c".into(),
            landing_token: "t".into(),
            phone_number: None,
            charges: Vec::new(),
            initial_charge: None,
        })
    }

    fn charge(store: &mut Store, ai: usize, id: &str, kind: rt::ChargeTypeV3, due: NaiveDate) -> usize {
        let transaction_id = store.next_transaction_id();
        store.insert_charge(
            Charge {
                msn: "123456".into(),
                id: id.to_owned(),
                agreement: ai,
                created: now(),
                amount: 5000,
                currency: rt::CurrencyV3::Nok,
                description: "d".into(),
                due,
                retry_days: 0,
                kind,
                transaction_type: rt::TransactionType::ReserveCapture,
                external_id: id.to_owned(),
                transaction_id,
                status: rt::ChargeStatus::Pending,
                captured: 0,
                refunded: 0,
                cancelled: 0,
                failure: None,
                history: Vec::new(),
            },
            "key",
        )
    }

    #[test]
    fn a_pending_agreement_expires_and_cancels_its_initial_charge() {
        let mut store = Store::default();
        let ai = agreement(&mut store);
        let ci = charge(&mut store, ai, "init", rt::ChargeTypeV3::Initial, now().date_naive());
        store.process_due(now() + Duration::minutes(9), std::time::Duration::from_secs(600));
        assert_eq!(store.agreement(ai).status, rt::AgreementStatus::Pending);
        store.process_due(now() + Duration::minutes(10), std::time::Duration::from_secs(600));
        assert_eq!(store.agreement(ai).status, rt::AgreementStatus::Expired);
        let c = store.charge(ci);
        assert_eq!((c.status.clone(), c.cancelled), (rt::ChargeStatus::Cancelled, 5000));
        assert!(store.accept(ai, "4712345678", clock_at(now() + Duration::minutes(11))).is_err());
    }

    #[test]
    fn charges_move_by_date_and_amounts_decide_the_status() {
        let mut store = Store::default();
        let ai = agreement(&mut store);
        store.accept(ai, "4712345678", clock_at(now())).unwrap();
        let due = now().date_naive() + Duration::days(3);
        let ci = charge(&mut store, ai, "c1", rt::ChargeTypeV3::Recurring, due);
        let at = |days: i64| clock_at(now() + Duration::days(days));
        store.settle_charge(ci, at(1));
        assert_eq!(store.charge(ci).status, rt::ChargeStatus::Pending);
        store.settle_charge(ci, at(2));
        assert_eq!(store.charge(ci).status, rt::ChargeStatus::Due);
        store.settle_charge(ci, at(3));
        assert_eq!(store.charge(ci).status, rt::ChargeStatus::Reserved);
        assert_eq!(store.charge(ci).history.last().unwrap().occurred, midnight(due));

        store.capture(ci, 2000, "k1", at(3)).unwrap();
        assert_eq!(store.charge(ci).status, rt::ChargeStatus::PartiallyCaptured);
        assert_eq!(store.capture(ci, 3001, "k2", at(3)).unwrap_err().status, 400);
        store.refund(ci, 500, "k3", at(3)).unwrap();
        assert_eq!(store.charge(ci).status, rt::ChargeStatus::PartiallyRefunded);
        store.capture(ci, 3000, "k4", at(3)).unwrap();
        store.refund(ci, 4500, "k5", at(3)).unwrap();
        let c = store.charge(ci);
        assert_eq!((c.status.clone(), c.captured, c.refunded), (rt::ChargeStatus::Refunded, 5000, 5000));
        assert_eq!(store.cancel(ci, "k6", at(3)).unwrap_err().status, 409);
    }

    #[test]
    fn intervals_read_as_text() {
        assert_eq!(interval_response(Some((rt::TimePeriodUnit::Month, 1))).text.as_deref(), Some("every month"));
        assert_eq!(interval_response(Some((rt::TimePeriodUnit::Week, 2))).text.as_deref(), Some("every 2 weeks"));
        let flexible = interval_response(None);
        assert_eq!((flexible.unit, flexible.count, flexible.text.as_deref()), (None, None, Some("flexible")));
    }
}
