//! The landing pages a customer opens: the `redirectUrl` of an ePayment payment and the
//! `vippsConfirmationUrl` of a Recurring agreement (unless drafted with `isApp`). Each is a
//! small HTML page, with no script, that shows what is asked and has two buttons in one plain
//! form, Approve and Reject.
//!
//! - `GET /epayment/v1/landing/{reference}?token=…` shows the merchant (its serial number),
//!   the amount and the payment's description. Approve authorizes the payment (as force
//!   approve does: `AUTHORIZED`, the whole amount reserved), Reject aborts it (`ABORTED`). The
//!   answer is a `303 See Other` to the payment's `returnUrl`, or a page saying what happened
//!   when it has none.
//! - `GET /recurring/v3/landing/{agreementId}?token=…` shows the merchant, the product, the
//!   price and interval, and the initial charge. It asks for the customer's phone number,
//!   filled in with the one the draft named (or `4712345678`); Approve accepts the agreement
//!   for it as force-accept does (`ACTIVE`, the initial charge reserved or charged;
//!   [`crate::recurring::FAILING_PHONE_NUMBER`] works here too), Reject stops it (`STOPPED`,
//!   the initial charge cancelled). The answer is a `303 See Other` to `merchantRedirectUrl`.
//!
//! The form is sent with `POST` to the same path (`token`, `decision` = `approve` or
//! `reject`, and `phoneNumber` for an agreement). The events of the change are delivered to
//! the merchant's webhooks as for any other change ([`crate::delivery`]).
//!
//! Errors are HTML pages too, with a 4xx status: 400 for a link or form without a token (or a
//! bad phone number or decision), 403 for a token that is not the link's, 404 for an unknown
//! payment or agreement, 409 for one that no longer waits for an answer (approved, rejected,
//! expired, cancelled). A `POST` that a browser marks as coming from another site (an
//! `Origin` other than the sandbox's base URL, or `Sec-Fetch-Site` other than `same-origin`
//! or `none`) is a 403, as for the `/_sandbox/` controls; the page's own form is same-origin.
//!
//! The pages need no credentials (the customer has none) and are never failed or delayed by
//! [`crate::Sandbox::fail_next`] or [`crate::Sandbox::set_latency`]. Every value put into a
//! page is HTML-escaped. The pages are sent with `Cache-Control: no-store`,
//! `Referrer-Policy: same-origin` (the link's token stays out of the merchant's logs) and a
//! content security policy that allows no script and no framing.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use crate::problem::ApiError;
use crate::state::AppState;

/// What the customer does on a landing page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Approve the payment or accept the agreement.
    Approve,
    /// Reject it.
    Reject,
}

/// The phone number the agreement page offers when the draft named none.
pub const DEFAULT_PHONE_NUMBER: &str = "4712345678";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/epayment/v1/landing/{reference}", get(payment_page).post(payment_answer))
        .route("/recurring/v3/landing/{agreement_id}", get(agreement_page).post(agreement_answer))
}

/// Whether a path is a landing page's (no credentials, no injected faults).
pub(crate) fn is_landing_path(path: &str) -> bool {
    path.starts_with("/epayment/v1/landing/") || path.starts_with("/recurring/v3/landing/")
}

/// Compares a token with the expected one in time that does not depend on where they differ.
pub(crate) fn same_token(expected: &str, given: &str) -> bool {
    expected.len() == given.len() && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Refuses a post that a browser marks as coming from another site (see the module doc).
fn same_site(headers: &HeaderMap, own: &str) -> Result<(), ApiError> {
    crate::control::check_same_site(headers, own).map_err(|_| {
        ApiError::forbidden(format!("the form must be sent from the sandbox's own page ({own}), not from another site"))
    })
}

/// The first value of `name` in a query string or form body.
fn field(encoded: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(encoded).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn token_of(encoded: &[u8]) -> Result<String, ApiError> {
    field(encoded, "token").filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::invalid("token", "the link has no token; open the URL the merchant was given, whole")
    })
}

fn decision_of(form: &[u8]) -> Result<Decision, ApiError> {
    match field(form, "decision").as_deref() {
        Some("approve") => Ok(Decision::Approve),
        Some("reject") => Ok(Decision::Reject),
        _ => Err(ApiError::invalid("decision", "must be approve or reject")),
    }
}

/// A whole page: the title, and a body already escaped. Every HTML page of the sandbox is made
/// here (these landing pages, Checkout's and Login's), so each gets the same escaping of its
/// title, `no-store`, referrer policy and content security policy.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · Vipps MobilePay sandbox</title>\n<style>\n\
         body {{ font-family: sans-serif; max-width: 28rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}\n\
         dt {{ font-weight: bold; margin-top: .6rem; }} dd {{ margin: 0; }}\n\
         button {{ font-size: 1.1rem; padding: .5rem 1.4rem; margin: 1.2rem .6rem 0 0; }}\n\
         #approve {{ background: #ff5b24; color: #fff; border: 0; }}\n\
         .note {{ color: #666; font-size: .85rem; }}\n</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n{body}\n\
         <p class=\"note\">A page of the Vipps MobilePay sandbox: no money moves.</p>\n</main>\n</body>\n</html>\n",
        title = text(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // `same-origin`, not `no-referrer`: with `no-referrer` a browser sends `Origin: null` on the
    // form's own post, which the same-site check refuses.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    );
    response
}

/// An error as a page, with the error's status.
fn error_page(e: ApiError) -> Response {
    let body = format!("<p id=\"error\">{}</p>", text(&e.detail));
    page(e.status, &e.title, &body)
}

/// `303 See Other` to the merchant's page, or a page with a link when the URL cannot be a
/// `Location` header.
fn back_to_merchant(url: &str, done: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(location) => {
            let mut response = page(StatusCode::SEE_OTHER, done, "<p>Back to the merchant.</p>");
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => page(StatusCode::OK, done, &format!("<p><a href=\"{}\">Back to the merchant</a></p>", attr(url))),
    }
}

/// The form with the two buttons; `extra` is more (escaped) fields before them.
fn form(action: &str, token: &str, extra: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\">\n<input type=\"hidden\" name=\"token\" value=\"{}\">\n{extra}\
         <button type=\"submit\" id=\"approve\" name=\"decision\" value=\"approve\">Approve</button>\n\
         <button type=\"submit\" id=\"reject\" name=\"decision\" value=\"reject\">Reject</button>\n</form>",
        attr(action),
        attr(token),
    )
}

fn payment_view(state: &AppState, reference: &str, token: &str, asked: &crate::epayment::Asked) -> Response {
    let amount = format!("{} {}", crate::recurring::money(asked.amount), asked.currency);
    let mut body = format!(
        "<dl>\n<dt>Merchant</dt><dd id=\"merchant\">Sales unit {}</dd>\n<dt>Amount</dt><dd id=\"amount\">{}</dd>\n",
        text(&asked.msn),
        text(&amount),
    );
    if let Some(description) = &asked.description {
        body.push_str(&format!("<dt>Description</dt><dd id=\"description\">{}</dd>\n", text(description)));
    }
    body.push_str(&format!("<dt>Reference</dt><dd id=\"reference\">{}</dd>\n</dl>\n", text(reference)));
    let action = format!("{}/epayment/v1/landing/{reference}", state.base_url());
    body.push_str(&form(&action, token, ""));
    page(StatusCode::OK, &format!("Pay {amount}"), &body)
}

fn waiting_payment(asked: &crate::epayment::Asked) -> Result<(), ApiError> {
    if asked.state == vipps_epayment::types::State::Created {
        Ok(())
    } else {
        Err(ApiError::conflict(format!("this payment is {} and no longer waits for an answer", asked.state)))
    }
}

async fn payment_page(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = token_of(query.unwrap_or_default().as_bytes()).and_then(|token| {
        let asked = crate::epayment::landing(&state, &reference, &token, None)?;
        waiting_payment(&asked)?;
        Ok(payment_view(&state, &reference, &token, &asked))
    });
    result.unwrap_or_else(error_page)
}

async fn payment_answer(
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    let result = same_site(&headers, state.base_url()).and_then(|()| {
        let token = token_of(&form)?;
        let decision = decision_of(&form)?;
        let asked = crate::epayment::landing(&state, &reference, &token, Some(decision))?;
        let done = match decision {
            Decision::Approve => "Payment approved",
            Decision::Reject => "Payment rejected",
        };
        Ok(match &asked.return_url {
            Some(url) => back_to_merchant(url, done),
            None => page(StatusCode::OK, done, "<p>You can close this page.</p>"),
        })
    });
    result.unwrap_or_else(error_page)
}

fn agreement_view(state: &AppState, agreement_id: &str, token: &str, asked: &crate::recurring::Asked) -> Response {
    let mut body = format!(
        "<dl>\n<dt>Merchant</dt><dd id=\"merchant\">Sales unit {}</dd>\n<dt>Product</dt><dd id=\"product\">{}</dd>\n",
        text(&asked.msn),
        text(&asked.product_name),
    );
    if let Some(description) = &asked.product_description {
        body.push_str(&format!("<dt>Description</dt><dd id=\"description\">{}</dd>\n", text(description)));
    }
    body.push_str(&format!("<dt>Price</dt><dd id=\"price\">{}</dd>\n", text(&asked.price)));
    if let Some((amount, currency, description)) = &asked.initial {
        let initial = format!("{} {currency}: {description}", crate::recurring::money(*amount));
        body.push_str(&format!("<dt>Paid now</dt><dd id=\"initial\">{}</dd>\n", text(&initial)));
    }
    body.push_str("</dl>\n");
    let phone = asked.phone_number.as_deref().unwrap_or(DEFAULT_PHONE_NUMBER);
    let extra = format!(
        "<p><label for=\"phone\">Your phone number</label><br>\
         <input id=\"phone\" name=\"phoneNumber\" inputmode=\"numeric\" value=\"{}\"></p>\n",
        attr(phone)
    );
    let action = format!("{}/recurring/v3/landing/{agreement_id}", state.base_url());
    body.push_str(&form(&action, token, &extra));
    page(StatusCode::OK, &format!("Agreement with sales unit {}", asked.msn), &body)
}

fn waiting_agreement(asked: &crate::recurring::Asked) -> Result<(), ApiError> {
    if asked.status == vipps_recurring::types::AgreementStatus::Pending {
        Ok(())
    } else {
        Err(ApiError::conflict(format!("this agreement is {} and no longer waits for an answer", asked.status)))
    }
}

async fn agreement_page(
    State(state): State<AppState>,
    Path(agreement_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let result = token_of(query.unwrap_or_default().as_bytes()).and_then(|token| {
        let asked = crate::recurring::landing(&state, &agreement_id, &token, None)?;
        waiting_agreement(&asked)?;
        Ok(agreement_view(&state, &agreement_id, &token, &asked))
    });
    result.unwrap_or_else(error_page)
}

async fn agreement_answer(
    State(state): State<AppState>,
    Path(agreement_id): Path<String>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    let result = same_site(&headers, state.base_url()).and_then(|()| {
        let token = token_of(&form)?;
        let decision = decision_of(&form)?;
        let phone = field(&form, "phoneNumber").unwrap_or_default();
        let asked = crate::recurring::landing(&state, &agreement_id, &token, Some((decision, phone.trim())))?;
        let done = match decision {
            Decision::Approve => "Agreement accepted",
            Decision::Reject => "Agreement rejected",
        };
        Ok(back_to_merchant(&asked.redirect_url, done))
    });
    result.unwrap_or_else(error_page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc123", "abc123"));
        assert!(!same_token("abc123", "abc124"));
        assert!(!same_token("abc123", "abc12"));
        assert!(!same_token("abc123", ""));
    }

    #[test]
    fn fields_are_read_from_form_encoding() {
        let form = b"token=t%2B1&decision=approve&phoneNumber=47+123";
        assert_eq!(field(form, "token").as_deref(), Some("t+1"));
        assert_eq!(field(form, "phoneNumber").as_deref(), Some("47 123"));
        assert_eq!(decision_of(form).unwrap(), Decision::Approve);
        assert_eq!(decision_of(b"decision=maybe").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(token_of(b"token=").unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn error_pages_escape_what_they_show() {
        let response = error_page(ApiError::not_found("no payment with reference <script>alert(1)</script>"));
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let html = futures_body(response);
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }

    fn futures_body(response: Response) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let bytes = runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
