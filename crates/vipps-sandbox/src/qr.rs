//! QR API v1: merchant redirect QR codes (create, list, read, change the target, delete),
//! one-time payment QR codes for an ePayment payment's landing page, merchant callback QR
//! codes (and the MobilePay beacon mapping), and the two exchange endpoints.
//!
//! As in the real API, the JSON answers carry a `url` to the image, and the image itself is
//! served without credentials (`GET {base}/qr/images/{token}`), in the format the request's
//! `Accept` asked for: `image/png` (and `image/*`) or `image/svg+xml`, `Size` pixels square
//! (100 to 2000, 400 when absent). With `Accept: text/targetUrl` the `url` is the text the QR
//! code holds instead. The images are real QR codes (the `qrcode` crate) of:
//!
//! - a merchant redirect QR: `{base}/qr/r/{msn}/{id}`, which the sandbox answers with a
//!   `302` to the QR's current `redirectUrl` (so changing the target changes where a scan
//!   goes, and the image stays the same), or 404 once it is deleted or its `ttl` has passed;
//! - a one-time payment QR: the payment's landing page, `{base}/epayment/v1/landing/...`,
//!   as the ePayment create call returned it. The payment must be this merchant's and still
//!   waiting for the customer; the QR expires with it (`expiresIn`, and the image is a 404
//!   afterwards);
//! - a merchant callback QR: `{base}/qr/c/{msn}/{merchantQrId}` (the sandbox sends no
//!   check-in callbacks when it is opened; it answers 404).
//!
//! Checks, each a 400 naming the field: a redirect QR's `id` (1 to 128 characters, the
//! spec's pattern) and `redirectUrl` (required, `https://`, the spec's pattern), `ttl` at
//! least 300; a landing page `url` of this sandbox; `locationDescription` at most 36
//! characters; a non-empty `qrCode` or `customer.customerToken`. A redirect QR id the merchant
//! already uses is a 409, as is a MobilePay beacon another merchant has mapped.
//!
//! The exchange endpoints answer for the one sandbox test user, [`EXCHANGE_MSISDN`].
//!
//! QR codes belong to the merchant of the call (`Merchant-Serial-Number`, or the sandbox's
//! own merchant when it is left out, which the spec allows for redirect and one-time QR
//! codes; the callback QR endpoints require it).

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use chrono::{DateTime, Utc};
use vipps_qr::types::{
    CustomerExchangeRequest, CustomerExchangeResponse, MerchantCallbackMobilePayPutRequest, MerchantCallbackPutRequest,
    MerchantCallbackQr, MerchantRedirectQrRequest, MerchantRedirectQrResponse, MerchantRedirectQrUpdateRequest,
    OneTimePaymentQrRequest, OneTimePaymentQrResponse, QrExchangeRequest, QrExchangeResponse,
};

use crate::extract::{Json, Path, Query};
use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState};

/// The MSISDN the exchange endpoints answer with: the sandbox's one test user.
pub const EXCHANGE_MSISDN: &str = "4791234567";

/// The image side when the request gives no `Size`.
pub const DEFAULT_SIZE: u32 = 400;

/// An image format the sandbox draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `image/png`.
    Png,
    /// `image/svg+xml`.
    Svg,
}

impl Format {
    /// Its media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Svg => "image/svg+xml",
        }
    }
}

/// What an answer's `url` is: an image link, or the QR code's text (`text/targetUrl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Image(Format),
    Target,
}

#[derive(Debug, Clone)]
struct Image {
    content: String,
    format: Format,
    size: u32,
    /// After this the image is a 404 (one-time payment QR codes).
    expires: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct RedirectQr {
    id: String,
    redirect_url: String,
    expires: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct CallbackQr {
    location_description: String,
}

/// QR codes, per merchant, and the images handed out.
#[derive(Debug, Default)]
pub struct Store {
    /// (msn, id) → redirect QR; a BTreeMap so that lists come in id order.
    redirects: BTreeMap<(String, String), RedirectQr>,
    /// (msn, merchantQrId) → callback QR.
    callbacks: BTreeMap<(String, String), CallbackQr>,
    /// beaconId → msn.
    beacons: HashMap<String, String>,
    images: HashMap<String, Image>,
}

impl Store {
    /// How many merchant redirect QR codes exist, for tests.
    pub fn redirect_count(&self) -> usize {
        self.redirects.len()
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/qr/v1", post(create_one_time))
        .route("/qr/v1/merchant-redirect", get(list_redirects).post(create_redirect))
        .route("/qr/v1/merchant-redirect/{id}", get(read_redirect).put(update_redirect).delete(delete_redirect))
        .route("/qr/v1/merchant-callback", get(list_callbacks))
        .route(
            "/qr/v1/merchant-callback/{id}",
            get(read_callback).put(put_callback).delete(delete_callback),
        )
        .route("/qr/v1/merchant-callback/mobilepay/{beacon}", put(put_beacon))
        .route("/qr/v1/exchange", post(exchange))
        .route("/qr/v1/exchange/customer", post(exchange_customer))
        .route("/qr/images/{token}", get(image))
        .route("/qr/r/{msn}/{id}", get(scan_redirect))
}

/// The paths served without credentials: the images and what the codes hold.
pub(crate) fn is_public_path(path: &str) -> bool {
    path.starts_with("/qr/images/") || path.starts_with("/qr/r/")
}

fn merchant(state: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    if headers.contains_key("merchant-serial-number") {
        crate::extract::msn(headers)
    } else {
        Ok(state.config.credentials.merchant_serial_number.clone())
    }
}

/// `Accept` and `Size`: the format asked for and the side in pixels.
fn wanted(headers: &HeaderMap) -> ApiResult<(Wanted, u32)> {
    let accept = headers.get(header::ACCEPT).map(|v| v.to_str().unwrap_or_default().trim().to_owned());
    let wanted = match accept.as_deref() {
        None | Some("image/*") | Some("image/png") => Wanted::Image(Format::Png),
        Some("image/svg+xml") => Wanted::Image(Format::Svg),
        Some("text/targetUrl") => Wanted::Target,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type",
                format!("Accept {other:?} is not one of image/*, image/png, image/svg+xml, text/targetUrl"),
            ))
        }
    };
    let size = match headers.get("size") {
        None => DEFAULT_SIZE,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|s| (100..=2000).contains(s))
            .ok_or_else(|| ApiError::invalid("Size", "must be a whole number from 100 to 2000"))?,
    };
    Ok((wanted, size))
}

impl Store {
    /// The `url` of an answer: a new image link, or the content itself.
    fn url(&mut self, base: &str, content: &str, wanted: Wanted, size: u32, expires: Option<DateTime<Utc>>) -> String {
        match wanted {
            Wanted::Target => content.to_owned(),
            Wanted::Image(format) => {
                // The same image always gets the same link, so that reading a QR code again
                // and again does not grow the store.
                use sha2::Digest;
                let digest = sha2::Sha256::digest(format!("{content}\n{}\n{size}", format.media_type()));
                let token: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                self.images.entry(token.clone()).or_insert(Image { content: content.to_owned(), format, size, expires });
                format!("{base}/qr/images/{token}")
            }
        }
    }
}

/// `s` as one URL path segment: every byte but the unreserved ones percent-encoded.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn redirect_content(base: &str, msn: &str, id: &str) -> String {
    format!("{base}/qr/r/{msn}/{}", path_segment(id))
}

fn expires_in(expires: Option<DateTime<Utc>>, now: DateTime<Utc>) -> i64 {
    expires.map_or(-1, |at| (at - now).num_seconds().max(0))
}

fn redirect_view(
    store: &mut Store,
    base: &str,
    msn: &str,
    qr: &RedirectQr,
    wanted: Wanted,
    size: u32,
    now: DateTime<Utc>,
) -> ApiResult<MerchantRedirectQrResponse> {
    let url = store.url(base, &redirect_content(base, msn, &qr.id), wanted, size, None);
    let bad = |e: &dyn std::fmt::Display| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", e.to_string());
    Ok(MerchantRedirectQrResponse {
        expires_in: Some(expires_in(qr.expires, now)),
        id: qr.id.parse().map_err(|e| bad(&e))?,
        redirect_url: qr.redirect_url.parse().map_err(|e| bad(&e))?,
        url,
    })
}

/// A redirect QR that exists and has not expired.
fn live(store: &Store, msn: &str, id: &str, now: DateTime<Utc>) -> Option<RedirectQr> {
    store.redirects.get(&(msn.to_owned(), id.to_owned())).filter(|q| q.expires.is_none_or(|at| now < at)).cloned()
}

fn check_redirect_url(url: Option<&str>) -> ApiResult<String> {
    let url = url.ok_or_else(|| ApiError::invalid("redirectUrl", "is required"))?;
    // The type's pattern already holds (`https://` and a host); the sandbox checks it again
    // for a body that was built some other way.
    if !url.starts_with("https://") || url.len() <= "https://".len() {
        return Err(ApiError::invalid("redirectUrl", "must be an https:// URL"));
    }
    Ok(url.to_owned())
}

async fn create_redirect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<MerchantRedirectQrRequest>,
) -> ApiResult<axum::Json<MerchantRedirectQrResponse>> {
    let msn = merchant(&state, &headers)?;
    let (wanted, size) = wanted(&headers)?;
    let id = body.id.as_ref().map(|i| i.to_string()).ok_or_else(|| ApiError::invalid("id", "is required"))?;
    let redirect_url = check_redirect_url(body.redirect_url.as_deref().map(|u| u.as_str()))?;
    let now = state.now();
    let expires = match body.ttl {
        None => None,
        Some(ttl) if !(300..=u64::from(i32::MAX.unsigned_abs())).contains(&ttl) => {
            return Err(ApiError::invalid("ttl", "must be 300 to 2147483647 seconds"))
        }
        Some(ttl) => Some(now + chrono::Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX))),
    };
    let mut store = lock(&state.qr);
    if live(&store, &msn, &id, now).is_some() {
        return Err(ApiError::conflict(format!("a merchant redirect QR with id {id:?} already exists")));
    }
    let qr = RedirectQr { id: id.clone(), redirect_url, expires };
    store.redirects.insert((msn.clone(), id), qr.clone());
    Ok(axum::Json(redirect_view(&mut store, state.base_url(), &msn, &qr, wanted, size, now)?))
}

async fn list_redirects(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<Vec<MerchantRedirectQrResponse>>> {
    let msn = merchant(&state, &headers)?;
    let (wanted, size) = wanted(&headers)?;
    let now = state.now();
    let mut store = lock(&state.qr);
    let mine: Vec<RedirectQr> = store
        .redirects
        .iter()
        .filter(|((m, _), q)| *m == msn && q.expires.is_none_or(|at| now < at))
        .map(|(_, q)| q.clone())
        .collect();
    let base = state.base_url();
    let list = mine.iter().map(|q| redirect_view(&mut store, base, &msn, q, wanted, size, now)).collect::<ApiResult<_>>()?;
    Ok(axum::Json(list))
}

async fn read_redirect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<MerchantRedirectQrResponse>> {
    let msn = merchant(&state, &headers)?;
    let (wanted, size) = wanted(&headers)?;
    let now = state.now();
    let mut store = lock(&state.qr);
    let qr = live(&store, &msn, &id, now).ok_or_else(|| ApiError::not_found(format!("no merchant redirect QR {id:?}")))?;
    Ok(axum::Json(redirect_view(&mut store, state.base_url(), &msn, &qr, wanted, size, now)?))
}

async fn update_redirect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<MerchantRedirectQrUpdateRequest>,
) -> ApiResult<axum::Json<MerchantRedirectQrResponse>> {
    let msn = merchant(&state, &headers)?;
    let (wanted, size) = wanted(&headers)?;
    let redirect_url = check_redirect_url(Some(body.redirect_url.as_str()))?;
    let now = state.now();
    let mut store = lock(&state.qr);
    let mut qr = live(&store, &msn, &id, now).ok_or_else(|| ApiError::not_found(format!("no merchant redirect QR {id:?}")))?;
    qr.redirect_url = redirect_url;
    store.redirects.insert((msn.clone(), id), qr.clone());
    Ok(axum::Json(redirect_view(&mut store, state.base_url(), &msn, &qr, wanted, size, now)?))
}

async fn delete_redirect(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let msn = merchant(&state, &headers)?;
    let now = state.now();
    let mut store = lock(&state.qr);
    if live(&store, &msn, &id, now).is_none() {
        return Err(ApiError::not_found(format!("no merchant redirect QR {id:?}")));
    }
    store.redirects.remove(&(msn, id));
    Ok(StatusCode::OK)
}

/// What a scan of a merchant redirect QR does: a 302 to its current target.
async fn scan_redirect(State(state): State<AppState>, Path((msn, id)): Path<(String, String)>) -> ApiResult<Response> {
    let now = state.now();
    let store = lock(&state.qr);
    let qr = live(&store, &msn, &id, now).ok_or_else(|| ApiError::not_found(format!("no merchant redirect QR {id:?}")))?;
    Ok((StatusCode::FOUND, [(header::LOCATION, qr.redirect_url)]).into_response())
}

async fn create_one_time(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<OneTimePaymentQrRequest>,
) -> ApiResult<axum::Json<OneTimePaymentQrResponse>> {
    let msn = merchant(&state, &headers)?;
    let (wanted, size) = wanted(&headers)?;
    let landing = format!("{}/epayment/v1/landing/", state.base_url());
    let url = body.url.trim();
    let rest = url.strip_prefix(&landing).ok_or_else(|| {
        ApiError::invalid("url", format!("must be a landing page of this sandbox ({landing}...), as a payment's redirectUrl"))
    })?;
    if qrcode::QrCode::new(url.as_bytes()).is_err() {
        return Err(ApiError::invalid("url", "is too long to fit in a QR code"));
    }
    let (reference, query) = rest.split_once('?').unwrap_or((rest, ""));
    let token = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned());
    let now = state.now();
    let expires = lock(&state.epayment)
        .waiting_for_customer(&msn, reference, token.as_deref().unwrap_or_default(), now)
        .ok_or_else(|| {
            ApiError::invalid("url", "is not the landing page of a payment of this merchant that waits for the customer")
        })?;
    let mut store = lock(&state.qr);
    let url = store.url(state.base_url(), url, wanted, size, Some(expires));
    Ok(axum::Json(OneTimePaymentQrResponse { expires_in: expires_in(Some(expires), now), url }))
}

async fn image(State(state): State<AppState>, Path(token): Path<String>) -> ApiResult<Response> {
    let now = state.now();
    let image = lock(&state.qr)
        .images
        .get(&token)
        .filter(|i| i.expires.is_none_or(|at| now < at))
        .cloned()
        .ok_or_else(|| ApiError::not_found("no such QR image, or it has expired"))?;
    let bytes = draw(&image.content, image.format, image.size)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", e))?;
    Ok(([(header::CONTENT_TYPE, image.format.media_type())], bytes).into_response())
}

/// A QR code holding `content`, `size` pixels square (with the 4-module quiet zone).
pub fn draw(content: &str, format: Format, size: u32) -> Result<Vec<u8>, String> {
    let code = qrcode::QrCode::new(content.as_bytes()).map_err(|e| e.to_string())?;
    match format {
        Format::Svg => Ok(code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(size, size)
            .max_dimensions(size, size)
            .build()
            .into_bytes()),
        Format::Png => {
            let modules = code.width();
            let dark = code.to_colors();
            let span = modules + 8;
            let side = size as usize;
            let mut pixels = vec![255u8; side * side];
            for y in 0..side {
                let my = (y * span / side) as isize - 4;
                for x in 0..side {
                    let mx = (x * span / side) as isize - 4;
                    let inside = (0..modules as isize).contains(&mx) && (0..modules as isize).contains(&my);
                    if inside && dark[my as usize * modules + mx as usize] == qrcode::Color::Dark {
                        pixels[y * side + x] = 0;
                    }
                }
            }
            let mut out = Vec::new();
            let mut encoder = png::Encoder::new(&mut out, size, size);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
            writer.write_image_data(&pixels).map_err(|e| e.to_string())?;
            writer.finish().map_err(|e| e.to_string())?;
            Ok(out)
        }
    }
}

/// `QrImageFormat` and `QrImageSize` of the callback QR reads.
#[derive(Debug, serde::Deserialize)]
struct ImageQuery {
    #[serde(rename = "QrImageFormat")]
    format: Option<String>,
    #[serde(rename = "QrImageSize")]
    size: Option<u32>,
}

fn image_query(q: &ImageQuery) -> ApiResult<(Format, u32)> {
    let format = match q.format.as_deref() {
        None | Some("SVG") => Format::Svg,
        Some("PNG") => Format::Png,
        Some(_) => return Err(ApiError::invalid("QrImageFormat", "must be PNG or SVG")),
    };
    let size = q.size.unwrap_or(DEFAULT_SIZE);
    if !(100..=2000).contains(&size) {
        return Err(ApiError::invalid("QrImageSize", "must be 100 to 2000"));
    }
    Ok((format, size))
}

fn callback_view(store: &mut Store, base: &str, msn: &str, id: &str, qr: &CallbackQr, format: Format, size: u32) -> MerchantCallbackQr {
    let content = format!("{base}/qr/c/{msn}/{}", path_segment(id));
    let image = store.url(base, &content, Wanted::Image(format), size, None);
    MerchantCallbackQr {
        location_description: Some(qr.location_description.clone()),
        merchant_qr_id: Some(id.to_owned()),
        merchant_serial_number: Some(msn.to_owned()),
        qr_content: Some(content),
        qr_image_url: Some(image),
    }
}

async fn list_callbacks(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ImageQuery>,
) -> ApiResult<axum::Json<Vec<MerchantCallbackQr>>> {
    let msn = crate::extract::msn(&headers)?;
    let (format, size) = image_query(&q)?;
    let mut store = lock(&state.qr);
    let mine: Vec<(String, CallbackQr)> =
        store.callbacks.iter().filter(|((m, _), _)| *m == msn).map(|((_, id), q)| (id.clone(), q.clone())).collect();
    let base = state.base_url();
    Ok(axum::Json(mine.iter().map(|(id, q)| callback_view(&mut store, base, &msn, id, q, format, size)).collect()))
}

async fn read_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ImageQuery>,
) -> ApiResult<axum::Json<MerchantCallbackQr>> {
    let msn = crate::extract::msn(&headers)?;
    let (format, size) = image_query(&q)?;
    let mut store = lock(&state.qr);
    let qr = store
        .callbacks
        .get(&(msn.clone(), id.clone()))
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no merchant callback QR {id:?}")))?;
    Ok(axum::Json(callback_view(&mut store, state.base_url(), &msn, &id, &qr, format, size)))
}

fn location(description: &str) -> ApiResult<String> {
    if description.chars().count() > 36 {
        return Err(ApiError::invalid("locationDescription", "at most 36 characters"));
    }
    Ok(description.to_owned())
}

async fn put_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<MerchantCallbackPutRequest>,
) -> ApiResult<StatusCode> {
    let msn = crate::extract::msn(&headers)?;
    let location_description = location(body.location_description.as_str())?;
    lock(&state.qr).callbacks.insert((msn, id), CallbackQr { location_description });
    Ok(StatusCode::OK)
}

async fn put_beacon(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(beacon): Path<String>,
    Json(body): Json<MerchantCallbackMobilePayPutRequest>,
) -> ApiResult<StatusCode> {
    let msn = crate::extract::msn(&headers)?;
    let location_description = location(body.location_description.as_str())?;
    let mut store = lock(&state.qr);
    match store.beacons.get(&beacon) {
        Some(owner) if *owner != msn => {
            return Err(ApiError::conflict(format!("beacon {beacon:?} is mapped to another merchant")));
        }
        _ => {}
    }
    store.beacons.insert(beacon.clone(), msn.clone());
    store.callbacks.insert((msn, beacon), CallbackQr { location_description });
    Ok(StatusCode::OK)
}

async fn delete_callback(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let msn = crate::extract::msn(&headers)?;
    let mut store = lock(&state.qr);
    if store.callbacks.remove(&(msn, id.clone())).is_none() {
        return Err(ApiError::not_found(format!("no merchant callback QR {id:?}")));
    }
    store.beacons.retain(|b, _| *b != id);
    Ok(StatusCode::OK)
}

async fn exchange(
    State(state): State<AppState>,
    Json(body): Json<QrExchangeRequest>,
) -> ApiResult<axum::Json<QrExchangeResponse>> {
    if body.qr_code.trim().is_empty() {
        return Err(ApiError::invalid("qrCode", "the complete content of the QR code is required"));
    }
    Ok(axum::Json(QrExchangeResponse {
        msisdn: EXCHANGE_MSISDN.into(),
        timestamp: Some(state.now().timestamp()),
        version: "2.0".into(),
    }))
}

async fn exchange_customer(
    State(state): State<AppState>,
    Json(body): Json<CustomerExchangeRequest>,
) -> ApiResult<axum::Json<CustomerExchangeResponse>> {
    if body.customer.customer_token.as_deref().is_none_or(|t| t.trim().is_empty()) {
        return Err(ApiError::invalid("customer.customerToken", "is required"));
    }
    Ok(axum::Json(CustomerExchangeResponse { msisdn: EXCHANGE_MSISDN.into(), timestamp: Some(state.now().timestamp()) }))
}
