//! Order Management API: images, categories (v2 per order and v3 by id), receipts (order
//! lines and bottom line) and reading an order back.
//!
//! Served: `POST /order-management/v1/images`, `PUT /order-management/v2/{paymentType}/categories/{orderId}`,
//! `POST /order-management/v2/{paymentType}/receipts/{orderId}`, `GET /order-management/v2/{paymentType}/{orderId}`,
//! and `POST`/`GET /order-management/v3/categories`, `GET`/`DELETE /order-management/v3/categories/{categoryId}`.
//! The deprecated v1 order and receipt operations are not served (404).
//!
//! Everything belongs to the merchant named by `Merchant-Serial-Number` (required): another
//! merchant neither sees nor can use it. As in the real service, the payment itself need not
//! exist: order information can be stored before the payment is made.
//!
//! Rules, beyond what the generated types check:
//! - images: `src` must be base64 of a PNG or JPEG of at most 2 MB and at least 167 px high;
//!   an `imageId` is unique per merchant: uploading the same id with the same `src` again is
//!   answered as the first time, with another `src` it is a 409;
//! - an `imageId` given to a category must have been uploaded by the merchant (else a 400
//!   naming `imageId`); `orderDetailsUrl` and `url` must be absolute http(s) URLs;
//! - `paymentType` in the path is lower case (`ecom`, `recurring`);
//! - a v2 category replaces the order's previous one; a receipt can be stored once per order
//!   (a second one is a 409);
//! - a receipt needs at least one order line; each line needs `taxRate` (0 to 10000) or
//!   `taxPercentage` (0 to 100), `totalAmount` must equal `totalAmountExcludingTax` plus
//!   `totalTaxAmount`, and discounts, unit prices and the bottom line's amounts must not be
//!   negative;
//! - `GET .../v2/{paymentType}/{orderId}` shows the receipt and the order's most recent
//!   category, whether it was set with v2 or created with v3 (for the matching payment type);
//!   it is a 404 when neither exists.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use base64::Engine;
use serde::Deserialize;
use vipps_order_management::types::{
    AddCategoryRequest, AddCategoryResponse, Category, CategoryId, GetCategoriesResponse, GetOrderV2OrderId,
    GetOrderV2PaymentType, Image, ImageResponse, Order, OrderLine, OrderV2Response, PaymentType, Receipt,
};

use crate::extract::{check_url, Json, Msn, Path, Query};
use crate::problem::{ApiError, ApiResult};
use crate::state::{lock, AppState};

/// The largest image the API takes, decoded.
const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// The smallest image height the API takes, in pixels.
const MIN_IMAGE_HEIGHT: u32 = 167;

#[derive(Debug, Clone)]
struct StoredCategory {
    seq: u64,
    msn: String,
    category: Category,
}

#[derive(Debug, Clone, Default)]
struct OrderRecord {
    /// The v2 category and when it was set.
    category: Option<(u64, Order)>,
    receipt: Option<Receipt>,
}

/// Images, categories and receipts.
#[derive(Debug, Default)]
pub struct Store {
    /// `src` by (merchant, imageId).
    images: HashMap<(String, String), String>,
    /// v3 categories by id.
    categories: HashMap<uuid::Uuid, StoredCategory>,
    /// v2 information by (merchant, payment type, orderId).
    orders: HashMap<(String, &'static str, String), OrderRecord>,
    /// Orders every write, so the most recent category can be told.
    seq: u64,
}

impl Store {
    /// How many images are stored, for tests that look inside.
    pub fn image_count(&self) -> usize {
        self.images.len()
    }

    /// How many v3 categories are stored, for tests that look inside.
    pub fn category_count(&self) -> usize {
        self.categories.len()
    }

    /// Whether a receipt is stored for an order (`payment_type`: `ecom` or `recurring`).
    pub fn has_receipt(&self, msn: &str, payment_type: &str, order_id: &str) -> bool {
        self.orders.iter().any(|((m, t, o), r)| m == msn && *t == payment_type && o == order_id && r.receipt.is_some())
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn has_image(&self, msn: &str, image_id: &str) -> bool {
        self.images.contains_key(&(msn.to_owned(), image_id.to_owned()))
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        // Base64 makes a 2 MB image about 2.7 MB of JSON, under the sandbox's 4 MiB body limit.
        .route("/order-management/v1/images", post(post_image))
        .route("/order-management/v2/{paymentType}/categories/{orderId}", put(put_category_v2))
        .route("/order-management/v2/{paymentType}/receipts/{orderId}", post(post_receipt_v2))
        .route("/order-management/v2/{paymentType}/{orderId}", get(get_order_v2))
        .route("/order-management/v3/categories", post(post_category_v3).get(get_categories_v3))
        .route("/order-management/v3/categories/{categoryId}", get(get_category_v3).delete(delete_category_v3))
}

// ---------------------------------------------------------------------------------------
// Checks

/// The path's `paymentType` (lower case, per the spec) and `orderId`.
fn order_path(payment_type: &str, order_id: &str) -> ApiResult<(&'static str, String)> {
    let kind = match payment_type.parse::<GetOrderV2PaymentType>() {
        Ok(GetOrderV2PaymentType::Ecom) => "ecom",
        Ok(GetOrderV2PaymentType::Recurring) => "recurring",
        Err(_) => return Err(ApiError::invalid("paymentType", "must be `ecom` or `recurring`")),
    };
    let order_id = order_id.parse::<GetOrderV2OrderId>().map_err(|e| ApiError::invalid("orderId", e.to_string()))?;
    Ok((kind, order_id.to_string()))
}

fn kind_of(payment_type: PaymentType) -> &'static str {
    match payment_type {
        PaymentType::Ecom => "ecom",
        PaymentType::Recurring => "recurring",
        // `parse_json` refuses unknown values in requests.
        PaymentType::Unknown(_) => unreachable!("requests hold only known payment types"),
    }
}

fn check_image_ref(store: &Store, msn: &str, image_id: Option<&str>) -> ApiResult<()> {
    match image_id {
        Some(id) if !store.has_image(msn, id) => {
            Err(ApiError::invalid("imageId", format!("no image `{id}` was uploaded by this merchant")))
        }
        _ => Ok(()),
    }
}

/// The pixel height of a PNG or JPEG, or why it cannot be read.
fn image_height(bytes: &[u8]) -> Result<u32, &'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if let Some(rest) = bytes.strip_prefix(PNG) {
        // The first chunk is IHDR: length (4), type (4), width (4), height (4).
        if rest.len() < 16 || &rest[4..8] != b"IHDR" {
            return Err("the PNG has no IHDR header");
        }
        return Ok(u32::from_be_bytes([rest[12], rest[13], rest[14], rest[15]]));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        // Walk the JPEG segments up to a start-of-frame marker, which holds the height.
        let mut i = 2;
        while i + 4 <= bytes.len() {
            if bytes[i] != 0xFF {
                return Err("the JPEG segments cannot be read");
            }
            let marker = bytes[i + 1];
            if marker == 0xFF {
                i += 1;
                continue;
            }
            if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
                i += 2;
                continue;
            }
            let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
            let is_sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
            if is_sof {
                if i + 7 > bytes.len() {
                    break;
                }
                return Ok(u32::from(u16::from_be_bytes([bytes[i + 5], bytes[i + 6]])));
            }
            if marker == 0xD9 || marker == 0xDA || len < 2 {
                break;
            }
            i += 2 + len;
        }
        return Err("the JPEG has no frame header");
    }
    Err("must be a PNG or JPEG image")
}

fn check_image(image: &Image) -> ApiResult<()> {
    let text: String = image.src.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|_| ApiError::invalid("src", "must be base64 (the image file itself, not a URL)"))?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ApiError::invalid("src", "the image is larger than 2 MB"));
    }
    let height = image_height(&bytes).map_err(|reason| ApiError::invalid("src", reason))?;
    if height < MIN_IMAGE_HEIGHT {
        return Err(ApiError::invalid(
            "src",
            format!("the image is {height} px high; at least {MIN_IMAGE_HEIGHT} px is needed"),
        ));
    }
    Ok(())
}

/// Signed or not: the document bounds some of these fields and not others.
fn non_negative<T: Copy + Into<i128>>(field: String, value: Option<T>) -> ApiResult<()> {
    match value.map(Into::into) {
        Some(v) if v < 0 => Err(ApiError::invalid(field, "must not be negative")),
        _ => Ok(()),
    }
}

fn in_range<T: Copy + Into<i128>>(field: String, value: Option<T>, max: i64) -> ApiResult<()> {
    match value.map(Into::into) {
        Some(v) if !(0..=i128::from(max)).contains(&v) => Err(ApiError::invalid(field, format!("must be between 0 and {max}"))),
        _ => Ok(()),
    }
}

fn check_line(i: usize, line: &OrderLine) -> ApiResult<()> {
    let f = |name: &str| format!("orderLines[{i}].{name}");
    if line.tax_rate.is_none() && line.tax_percentage.is_none() {
        return Err(ApiError::invalid(f("taxRate"), "one of taxRate or taxPercentage is required"));
    }
    in_range(f("taxRate"), line.tax_rate, 10_000)?;
    in_range(f("taxPercentage"), line.tax_percentage, 100)?;
    non_negative(f("discount"), line.discount)?;
    if let Some(unit) = &line.unit_info {
        non_negative(f("unitInfo.unitPrice"), unit.unit_price)?;
    }
    let sum = line.total_amount_excluding_tax.checked_add(line.total_tax_amount);
    if sum != Some(line.total_amount) {
        return Err(ApiError::invalid(
            f("totalAmount"),
            format!(
                "must equal totalAmountExcludingTax + totalTaxAmount ({} + {})",
                line.total_amount_excluding_tax, line.total_tax_amount
            ),
        ));
    }
    Ok(())
}

fn check_receipt(receipt: &Receipt) -> ApiResult<()> {
    if receipt.order_lines.is_empty() {
        return Err(ApiError::invalid("orderLines", "at least one order line is required"));
    }
    for (i, line) in receipt.order_lines.iter().enumerate() {
        check_line(i, line)?;
    }
    let b = &receipt.bottom_line;
    let f = |name: &str| format!("bottomLine.{name}");
    non_negative(f("tipAmount"), b.tip_amount)?;
    non_negative(f("giftCardAmount"), b.gift_card_amount)?;
    non_negative(f("totalTax"), b.total_tax)?;
    non_negative(f("totalDiscount"), b.total_discount)?;
    non_negative(f("shippingAmount"), b.shipping_amount)?;
    if let Some(s) = &b.shipping_info {
        non_negative(f("shippingInfo.amount"), s.amount)?;
        non_negative(f("shippingInfo.amountExcludingTax"), s.amount_excluding_tax)?;
        non_negative(f("shippingInfo.taxAmount"), s.tax_amount)?;
        in_range(f("shippingInfo.taxPercentage"), s.tax_percentage, 100)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Handlers

async fn post_image(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Json(image): Json<Image>,
) -> ApiResult<axum::Json<ImageResponse>> {
    check_image(&image)?;
    let id = image.image_id.to_string();
    let mut store = lock(&state.order_management);
    let key = (msn, id.clone());
    match store.images.get(&key) {
        Some(src) if *src != image.src => {
            return Err(ApiError::conflict(format!("an image with imageId `{id}` exists already")));
        }
        Some(_) => {}
        None => {
            store.images.insert(key, image.src);
        }
    }
    Ok(axum::Json(ImageResponse { image_id: Some(id) }))
}

async fn put_category_v2(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path((payment_type, order_id)): Path<(String, String)>,
    Json(order): Json<Order>,
) -> ApiResult<axum::Json<String>> {
    let (kind, order_id) = order_path(&payment_type, &order_id)?;
    check_url("orderDetailsUrl", &order.order_details_url)?;
    let mut store = lock(&state.order_management);
    check_image_ref(&store, &msn, order.image_id.as_deref().map(String::as_str))?;
    let seq = store.next_seq();
    store.orders.entry((msn, kind, order_id)).or_default().category = Some((seq, order));
    Ok(axum::Json(uuid::Uuid::new_v4().to_string()))
}

async fn post_receipt_v2(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path((payment_type, order_id)): Path<(String, String)>,
    Json(receipt): Json<Receipt>,
) -> ApiResult<(StatusCode, axum::Json<String>)> {
    let (kind, order_id) = order_path(&payment_type, &order_id)?;
    check_receipt(&receipt)?;
    let mut store = lock(&state.order_management);
    let record = store.orders.entry((msn, kind, order_id.clone())).or_default();
    if record.receipt.is_some() {
        return Err(ApiError::conflict(format!(
            "order `{order_id}` has its order lines already; they cannot be replaced"
        )));
    }
    record.receipt = Some(receipt);
    Ok((StatusCode::CREATED, axum::Json(uuid::Uuid::new_v4().to_string())))
}

/// A v3 category shown as the category part of a v2 order.
fn as_order(category: &Category) -> Option<Order> {
    Some(Order {
        category: category.type_.clone(),
        image_id: category.image_id.as_ref().and_then(|id| id.as_str().parse().ok()),
        order_details_url: category.url.as_ref()?.as_str().parse().ok()?,
    })
}

async fn get_order_v2(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path((payment_type, order_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<OrderV2Response>> {
    let (kind, order_id) = order_path(&payment_type, &order_id)?;
    let store = lock(&state.order_management);
    let record = store.orders.get(&(msn.clone(), kind, order_id.clone()));
    let v2 = record.and_then(|r| r.category.as_ref()).map(|(seq, order)| (*seq, order.clone()));
    let v3 = store
        .categories
        .values()
        .filter(|c| {
            c.msn == msn
                && c.category.payment_type.clone().map(kind_of) == Some(kind)
                && c.category.order_id.as_deref().map(String::as_str) == Some(order_id.as_str())
        })
        .filter_map(|c| Some((c.seq, as_order(&c.category)?)))
        .max_by_key(|(seq, _)| *seq);
    let category = match (v2, v3) {
        (Some(a), Some(b)) => Some(if a.0 > b.0 { a.1 } else { b.1 }),
        (a, b) => a.or(b).map(|(_, order)| order),
    };
    let receipt = record.and_then(|r| r.receipt.clone());
    if category.is_none() && receipt.is_none() {
        return Err(ApiError::not_found(format!("nothing is stored for {kind} order `{order_id}`")));
    }
    Ok(axum::Json(OrderV2Response { category, receipt }))
}

async fn post_category_v3(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Json(request): Json<AddCategoryRequest>,
) -> ApiResult<(StatusCode, axum::Json<AddCategoryResponse>)> {
    check_url("url", &request.url)?;
    let id = uuid::Uuid::new_v4();
    let mut store = lock(&state.order_management);
    check_image_ref(&store, &msn, request.image_id.as_deref().map(String::as_str))?;
    let category = Category {
        category_id: Some(CategoryId(id)),
        image_id: request.image_id.as_ref().and_then(|i| i.as_str().parse().ok()),
        order_id: Some(request.order_id),
        payment_type: Some(request.payment_type),
        type_: request.type_,
        url: request.url.as_str().parse().ok(),
    };
    let seq = store.next_seq();
    store.categories.insert(id, StoredCategory { seq, msn, category });
    Ok((StatusCode::CREATED, axum::Json(AddCategoryResponse { category_id: Some(id) })))
}

#[derive(Deserialize)]
struct CategoriesQuery {
    #[serde(rename = "orderId")]
    order_id: Option<String>,
}

async fn get_categories_v3(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Query(query): Query<CategoriesQuery>,
) -> ApiResult<axum::Json<GetCategoriesResponse>> {
    let store = lock(&state.order_management);
    let mut found: Vec<&StoredCategory> = store
        .categories
        .values()
        .filter(|c| c.msn == msn)
        .filter(|c| match &query.order_id {
            Some(wanted) => c.category.order_id.as_deref().map(String::as_str) == Some(wanted.as_str()),
            None => true,
        })
        .collect();
    found.sort_by_key(|c| c.seq);
    Ok(axum::Json(GetCategoriesResponse { categories: found.into_iter().map(|c| c.category.clone()).collect() }))
}

fn category_id(raw: &str) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::invalid("categoryId", "must be a UUID"))
}

async fn get_category_v3(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path(raw): Path<String>,
) -> ApiResult<axum::Json<Category>> {
    let id = category_id(&raw)?;
    let store = lock(&state.order_management);
    store
        .categories
        .get(&id)
        .filter(|c| c.msn == msn)
        .map(|c| axum::Json(c.category.clone()))
        .ok_or_else(|| ApiError::not_found(format!("no category {id}")))
}

async fn delete_category_v3(
    State(state): State<AppState>,
    Msn(msn): Msn,
    Path(raw): Path<String>,
) -> ApiResult<StatusCode> {
    let id = category_id(&raw)?;
    let mut store = lock(&state.order_management);
    match store.categories.get(&id) {
        Some(c) if c.msn == msn => {
            store.categories.remove(&id);
            Ok(StatusCode::OK)
        }
        _ => Err(ApiError::not_found(format!("no category {id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(height: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        v.extend_from_slice(&13u32.to_be_bytes());
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&1u32.to_be_bytes());
        v.extend_from_slice(&height.to_be_bytes());
        v.extend_from_slice(&[8, 0, 0, 0, 0]);
        v
    }

    fn jpeg(height: u16) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        // An APP0 segment to skip, then a baseline frame header.
        v.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00]);
        v.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08]);
        v.extend_from_slice(&height.to_be_bytes());
        v.extend_from_slice(&[0x00, 0x01, 0x01, 0x01, 0x11, 0x00]);
        v
    }

    #[test]
    fn reads_image_heights() {
        assert_eq!(image_height(&png(200)), Ok(200));
        assert_eq!(image_height(&jpeg(480)), Ok(480));
        assert!(image_height(b"GIF89a....").is_err());
        assert!(image_height(&[0xFF, 0xD8, 0xFF]).is_err());
    }

    #[test]
    fn checks_line_totals_and_tax() {
        let read = |total: i64, rate: Option<i64>| {
            serde_json::from_value::<OrderLine>(serde_json::json!({
                "name": "Socks", "id": "s1", "totalAmount": total,
                "totalAmountExcludingTax": 800, "totalTaxAmount": 200, "taxRate": rate
            }))
        };
        let line = |total: i64, rate: Option<i64>| read(total, rate).unwrap();
        assert!(check_line(0, &line(1000, Some(2500))).is_ok());
        assert_eq!(check_line(0, &line(999, Some(2500))).unwrap_err().fields[0].0, "orderLines[0].totalAmount");
        assert_eq!(check_line(1, &line(1000, None)).unwrap_err().fields[0].0, "orderLines[1].taxRate");
        // Over the spec's `maximum: 10000` the generated type refuses it as the body is read.
        assert!(read(1000, Some(10_001)).unwrap_err().to_string().contains("greater than the maximum 10000"));
    }
}
