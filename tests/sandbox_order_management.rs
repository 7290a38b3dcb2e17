//! The Order Management API through the facade (`vipps.order_management()`) against the
//! sandbox: image, category and receipt for an order and reading it back, the v3 categories,
//! every operation, and requests that break the spec (a 400 naming the field, nothing stored).

#[path = "support/mod.rs"]
mod support;

use serde_json::{json, Value};
use vipps::Vipps;
use vipps_order_management::types::{
    AddCategoryRequest, CategoryEnum, CategoryId, Image, ImageType, Order, OrderV2Response, PaymentType, Receipt,
};
use support::raw_field;
use vipps_sandbox::Sandbox;

// ---------------------------------------------------------------------------------------
// A real (tiny) PNG: 1 px wide, `height` px high, grey.

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn png(height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = 1u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    chunk(&mut out, b"IHDR", &ihdr);
    // Each row: filter byte 0 and one pixel, in one stored (uncompressed) deflate block.
    let raw: Vec<u8> = (0..height).flat_map(|_| [0u8, 0x80]).collect();
    let len = raw.len() as u16;
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Helpers

fn image(id: &str, src: String) -> Image {
    Image { image_id: id.try_into().unwrap(), src, type_: ImageType::Base64 }
}

fn category(kind: CategoryEnum, url: &str, image_id: Option<&str>) -> Order {
    Order {
        category: Some(kind),
        order_details_url: url.try_into().unwrap(),
        image_id: image_id.map(|i| i.try_into().unwrap()),
    }
}

/// The seed's two-line example with a shipping line, as JSON.
fn receipt_json() -> Value {
    json!({
        "orderLines": [
            {
                "name": "socks", "id": "line_item_1",
                "totalAmount": 1000, "totalAmountExcludingTax": 800, "totalTaxAmount": 200,
                "taxRate": 2500,
                "unitInfo": {"unitPrice": 400, "quantity": "2.5", "quantityUnit": "KG"},
                "discount": 0, "productUrl": "https://example.com/store/socks",
                "isReturn": false, "isShipping": false
            },
            {
                "name": "Home Delivery", "id": "delivery",
                "totalAmount": 1000, "totalAmountExcludingTax": 800, "totalTaxAmount": 200,
                "taxPercentage": 25, "isShipping": true
            }
        ],
        "bottomLine": {
            "currency": "NOK", "tipAmount": 0, "posId": "pos_122",
            "paymentSources": {"giftCard": 0, "card": 2000, "voucher": 0, "cash": 0},
            "barcode": {"format": "CODE 39", "data": "SC0527013501"},
            "receiptNumber": "0527013501"
        }
    })
}

fn receipt() -> Receipt {
    serde_json::from_value(receipt_json()).expect("a valid receipt")
}

async fn upload(vipps: &Vipps, id: &str) {
    let answer =
        vipps.order_management().post_image().body(image(id, base64(&png(200)))).send().await.expect("uploaded");
    assert_eq!(answer.into_inner().image_id.as_deref(), Some(id));
}

async fn get_order(vipps: &Vipps, kind: &str, order_id: &str) -> Result<OrderV2Response, vipps_core::Error> {
    vipps
        .order_management()
        .get_order_v2()
        .payment_type(kind)
        .order_id(order_id)
        .send()
        .await
        .map(|r| r.into_inner())

}

fn field_of(err: &vipps_core::Error) -> (Option<u16>, String) {
    let name = err
        .problem()
        .and_then(|p| p.extra_details.as_ref())
        .and_then(|d| d[0]["name"].as_str())
        .unwrap_or_default()
        .to_owned();
    (err.status(), name)
}

/// The status and problem body of a failed `post_image`, through the SDK's typed error.
async fn image_error(err: vipps_core::Error) -> (u16, Value) {
    let status = err.status().unwrap_or_else(|| panic!("not an error answer: {err:?}"));
    (status, serde_json::to_value(err.problem().expect("a problem body")).unwrap())
}

async fn raw(sandbox: &Sandbox, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = support::raw_request(sandbox, method, path).await;
    if let Some(body) = body {
        request = request.json(&body);
    }
    support::raw_send(request).await
}

fn counts(sandbox: &Sandbox) -> (usize, usize) {
    let store = vipps_sandbox::state::lock(&sandbox.state().order_management);
    (store.image_count(), store.category_count())
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn an_order_gets_an_image_a_category_and_a_receipt_and_reads_back_with_both() {
    let (_sandbox, vipps) = support::start().await;
    let om = vipps.order_management();
    upload(&vipps, "logo-12345678").await;

    let id = om
        .put_category_v2()
        .payment_type("ecom")
        .order_id("PAYMENT-ORDER-ID")
        .body(category(CategoryEnum::General, "https://www.example.com/2486791691483852025", Some("logo-12345678")))
        .send()
        .await
        .expect("category set")
        .into_inner();
    assert!(!id.is_empty());

    let id = om
        .post_receipt_v2()
        .payment_type("ecom")
        .order_id("PAYMENT-ORDER-ID")
        .body(receipt())
        .send()
        .await
        .expect("receipt stored")
        .into_inner();
    assert!(!id.is_empty());

    let order = get_order(&vipps, "ecom", "PAYMENT-ORDER-ID").await.expect("the order");
    let cat = order.category.expect("a category");
    assert_eq!(cat.category, Some(CategoryEnum::General));
    assert_eq!(cat.order_details_url.as_str(), "https://www.example.com/2486791691483852025");
    assert_eq!(cat.image_id.as_deref().map(String::as_str), Some("logo-12345678"));
    assert_eq!(order.receipt, Some(receipt()));

    // The same order id under the other payment type is another order.
    assert_eq!(get_order(&vipps, "recurring", "PAYMENT-ORDER-ID").await.unwrap_err().status(), Some(404));
}

#[tokio::test]
async fn a_category_is_replaced_but_a_receipt_is_stored_once() {
    let (_sandbox, vipps) = support::start().await;
    let om = vipps.order_management();
    let put = |kind, url: &'static str| {
        om.put_category_v2().payment_type("recurring").order_id("sub-2024-09").body(category(kind, url, None)).send()
    };
    put(CategoryEnum::OrderConfirmation, "https://example.com/first").await.unwrap();
    put(CategoryEnum::Receipt, "https://example.com/second").await.unwrap();
    let order = get_order(&vipps, "recurring", "sub-2024-09").await.unwrap();
    let cat = order.category.unwrap();
    assert_eq!(
        (cat.category, cat.order_details_url.as_str()),
        (Some(CategoryEnum::Receipt), "https://example.com/second")
    );
    assert_eq!(cat.image_id, None);
    assert_eq!(order.receipt, None);

    let post = || om.post_receipt_v2().payment_type("recurring").order_id("sub-2024-09").body(receipt()).send();
    post().await.unwrap();
    let err = post().await.unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert_eq!(get_order(&vipps, "recurring", "sub-2024-09").await.unwrap().receipt, Some(receipt()));
}

#[tokio::test]
async fn v3_categories_are_created_listed_read_shown_on_the_order_and_deleted() {
    let (sandbox, vipps) = support::start().await;
    let om = vipps.order_management();
    upload(&vipps, "ticket-image").await;
    let add = |order_id: &str, kind: &str, image: Option<&str>| -> AddCategoryRequest {
        serde_json::from_value(json!({
            "orderId": order_id, "paymentType": "ECOM", "type": kind,
            "url": format!("https://www.example.com/{order_id}"), "imageId": image
        }))
        .unwrap()
    };

    let first =
        om.post_category_v3().body(add("PaymentReference123", "TICKET", Some("ticket-image"))).send().await.unwrap();
    let first = first.into_inner().category_id.expect("an id");
    let second = om.post_category_v3().body(add("OtherReference", "BOOKING", None)).send().await.unwrap();
    let second = second.into_inner().category_id.expect("an id");
    assert_ne!(first, second);

    let all = om.get_categories_v3().send().await.unwrap().into_inner().categories;
    assert_eq!(all.len(), 2);
    let mine = om.get_categories_v3().order_id("PaymentReference123").send().await.unwrap().into_inner().categories;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].category_id.as_ref().map(|c| c.0), Some(first));

    let one = om.get_category_v3().category_id(first).send().await.unwrap().into_inner();
    assert_eq!(one.order_id.as_deref().map(String::as_str), Some("PaymentReference123"));
    assert_eq!(one.payment_type, Some(PaymentType::Ecom));
    assert_eq!(one.type_, Some(CategoryEnum::Ticket));
    assert_eq!(one.url.as_deref().map(String::as_str), Some("https://www.example.com/PaymentReference123"));
    assert_eq!(one.image_id.as_deref(), Some("ticket-image"));

    // The order shows the v3 category (ECOM is the `ecom` path type).
    let order = get_order(&vipps, "ecom", "PaymentReference123").await.unwrap();
    assert_eq!(order.category.and_then(|c| c.category), Some(CategoryEnum::Ticket));

    om.delete_category_v3().category_id(first).send().await.expect("deleted");
    let err = om.get_category_v3().category_id(first).send().await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let err = om.delete_category_v3().category_id(first).send().await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(get_order(&vipps, "ecom", "PaymentReference123").await.unwrap_err().status(), Some(404));
    let left = om.get_categories_v3().send().await.unwrap().into_inner().categories;
    assert_eq!(left.iter().map(|c| c.category_id.as_ref().map(|c| c.0)).collect::<Vec<_>>(), vec![Some(second)]);

    let unknown: CategoryId = "00000000-0000-4000-8000-000000000000".parse().unwrap();
    let err = om.get_category_v3().category_id(unknown.0).send().await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let (status, answer) = raw(&sandbox, "GET", "/order-management/v3/categories/not-a-uuid", None).await;
    assert_eq!((status, raw_field(&answer)), (400, "categoryId"), "{answer}");
}

#[tokio::test]
async fn images_must_be_base64_png_or_jpeg_high_enough_and_ids_are_unique() {
    let (sandbox, vipps) = support::start().await;
    let om = vipps.order_management();
    let send = |id: &str, src: String| om.post_image().body(image(id, src)).send();

    for (src, why) in [
        ("not base64!".to_owned(), "not base64"),
        (base64(b"GIF89a............"), "a GIF"),
        (base64(&png(100)), "100 px high"),
        ("a3NhbGZuc2FrbGZubGthc25ma2Fuc2ZsYXNuZmxrYXNuZmw=".to_owned(), "text, not an image"),
    ] {
        let (status, answer) = image_error(send("bad-image", src).await.unwrap_err()).await;
        assert_eq!((status, raw_field(&answer)), (400, "src"), "{why}: {answer}");
    }
    assert_eq!(counts(&sandbox).0, 0);

    // The same id again: the same image is fine, another one conflicts.
    let src = base64(&png(200));
    send("socks-orange-123", src.clone()).await.unwrap();
    send("socks-orange-123", src).await.expect("the same image again");
    let (status, _) = image_error(send("socks-orange-123", base64(&png(300))).await.unwrap_err()).await;
    assert_eq!(status, 409);
    assert_eq!(counts(&sandbox).0, 1);

    // Bodies the generated types refuse client-side.
    let good = json!({"imageId": "x", "src": base64(&png(200)), "type": "base64"});
    let mut bad_id = good.clone();
    bad_id["imageId"] = json!("has space");
    let mut long_id = good.clone();
    long_id["imageId"] = json!("a".repeat(129));
    let mut bad_type = good.clone();
    bad_type["type"] = json!("url");
    let mut no_src = good.clone();
    no_src.as_object_mut().unwrap().remove("src");
    for (body, field) in [(bad_id, "imageId"), (long_id, "imageId"), (bad_type, "type"), (no_src, "src")] {
        let (status, answer) = raw(&sandbox, "POST", "/order-management/v1/images", Some(body)).await;
        assert_eq!((status, raw_field(&answer)), (400, field), "{answer}");
    }
    assert_eq!(counts(&sandbox).0, 1);
}

#[tokio::test]
async fn categories_need_an_uploaded_image_and_an_absolute_url() {
    let (sandbox, vipps) = support::start().await;
    let om = vipps.order_management();

    let err = om
        .put_category_v2()
        .payment_type("ecom")
        .order_id("order-1")
        .body(category(CategoryEnum::General, "https://example.com/o/1", Some("never-uploaded")))
        .send()
        .await

        .unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "imageId".into()));
    let err = om
        .put_category_v2()
        .payment_type("ecom")
        .order_id("order-1")
        .body(category(CategoryEnum::General, "example.com/o/1", None))
        .send()
        .await

        .unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "orderDetailsUrl".into()));
    assert_eq!(get_order(&vipps, "ecom", "order-1").await.unwrap_err().status(), Some(404));

    let add: AddCategoryRequest = serde_json::from_value(json!({
        "orderId": "order-1", "paymentType": "ECOM", "type": "RECEIPT",
        "url": "https://example.com/o/1", "imageId": "never-uploaded"
    }))
    .unwrap();
    let err = om.post_category_v3().body(add).send().await.unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "imageId".into()));

    // Bodies and paths the generated types refuse client-side.
    let good =
        json!({"orderId": "order-1", "paymentType": "ECOM", "type": "RECEIPT", "url": "https://example.com/o/1"});
    let mut lower = good.clone();
    lower["paymentType"] = json!("ecom");
    let mut no_url = good.clone();
    no_url.as_object_mut().unwrap().remove("url");
    let mut bad_order = good.clone();
    bad_order["orderId"] = json!("order 1");
    let mut bad_kind = good.clone();
    bad_kind["type"] = json!("INVOICE");
    for (body, field) in [(lower, "paymentType"), (no_url, "url"), (bad_order, "orderId"), (bad_kind, "type")] {
        let (status, answer) = raw(&sandbox, "POST", "/order-management/v3/categories", Some(body)).await;
        assert_eq!((status, raw_field(&answer)), (400, field), "{answer}");
    }
    let body = json!({"category": "GENERAL", "orderDetailsUrl": "https://example.com"});
    let (status, answer) =
        raw(&sandbox, "PUT", "/order-management/v2/ECOM/categories/order-1", Some(body.clone())).await;
    assert_eq!((status, raw_field(&answer)), (400, "paymentType"), "{answer}");
    let (status, answer) = raw(&sandbox, "PUT", "/order-management/v2/ecom/categories/order%201", Some(body)).await;
    assert_eq!((status, raw_field(&answer)), (400, "orderId"), "{answer}");
    let (status, answer) =
        raw(&sandbox, "PUT", "/order-management/v2/ecom/categories/order-1", Some(json!({"category": "GENERAL"})))
            .await;
    assert_eq!((status, raw_field(&answer)), (400, "orderDetailsUrl"), "{answer}");

    assert_eq!(counts(&sandbox), (0, 0));
    assert_eq!(get_order(&vipps, "ecom", "order-1").await.unwrap_err().status(), Some(404));
}

#[tokio::test]
async fn receipts_that_break_the_rules_are_400s_naming_the_field_and_store_nothing() {
    let (sandbox, vipps) = support::start().await;
    let om = vipps.order_management();
    let post = |r: Receipt| om.post_receipt_v2().payment_type("ecom").order_id("receipt-1").body(r).send();

    let change = |f: &dyn Fn(&mut Value)| -> Receipt {
        let mut v = receipt_json();
        f(&mut v);
        serde_json::from_value(v).unwrap()
    };
    let cases: Vec<(Receipt, &str)> = vec![
        (change(&|v| v["orderLines"][0]["totalAmount"] = json!(999)), "orderLines[0].totalAmount"),
        (
            change(&|v| {
                v["orderLines"][1].as_object_mut().unwrap().remove("taxPercentage");
            }),
            "orderLines[1].taxRate",
        ),
        (change(&|v| v["orderLines"] = json!([])), "orderLines"),
    ];
    for (body, field) in cases {
        let err = post(body).await.unwrap_err();
        assert_eq!(field_of(&err), (Some(400), field.into()));
    }

    // Bodies the generated types refuse client-side.
    let raw_cases = [
        (json!({"orderLines": receipt_json()["orderLines"]}), "bottomLine"),
        (json!({"bottomLine": {"currency": "NOK"}}), "orderLines"),
        (
            {
                let mut v = receipt_json();
                v["bottomLine"]["currency"] = json!("SEK");
                v
            },
            "bottomLine.currency",
        ),
        (
            {
                let mut v = receipt_json();
                v["orderLines"][0]["unitInfo"]["quantity"] = json!("2,5");
                v
            },
            "orderLines[0].unitInfo.quantity",
        ),
        (
            {
                let mut v = receipt_json();
                v["orderLines"][0].as_object_mut().unwrap().remove("name");
                v
            },
            "orderLines[0].name",
        ),
        (
            {
                let mut v = receipt_json();
                v["orderLines"][0]["totalAmount"] = json!("1000");
                v
            },
            "orderLines[0].totalAmount",
        ),
    ];
    // Out of the spec's `minimum`/`maximum`: the generated types refuse these too.
    let changed = |f: &dyn Fn(&mut Value)| {
        let mut v = receipt_json();
        f(&mut v);
        assert!(serde_json::from_value::<Receipt>(v.clone()).is_err(), "{v}");
        v
    };
    let out_of_range = [
        (changed(&|v| v["orderLines"][0]["taxRate"] = json!(10_001)), "orderLines[0].taxRate"),
        (changed(&|v| v["orderLines"][1]["taxPercentage"] = json!(101)), "orderLines[1].taxPercentage"),
        (changed(&|v| v["orderLines"][0]["discount"] = json!(-1)), "orderLines[0].discount"),
        (changed(&|v| v["orderLines"][0]["unitInfo"]["unitPrice"] = json!(-400)), "orderLines[0].unitInfo.unitPrice"),
        (changed(&|v| v["bottomLine"]["tipAmount"] = json!(-5)), "bottomLine.tipAmount"),
    ];
    for (body, field) in raw_cases.into_iter().chain(out_of_range) {
        let (status, answer) = raw(&sandbox, "POST", "/order-management/v2/ecom/receipts/receipt-1", Some(body)).await;
        assert_eq!((status, raw_field(&answer)), (400, field), "{answer}");
    }

    assert!(!vipps_sandbox::state::lock(&sandbox.state().order_management).has_receipt("123456", "ecom", "receipt-1"));
    assert_eq!(get_order(&vipps, "ecom", "receipt-1").await.unwrap_err().status(), Some(404));
    // A good receipt is still accepted afterwards.
    post(receipt()).await.expect("stored");
    assert_eq!(get_order(&vipps, "ecom", "receipt-1").await.unwrap().receipt, Some(receipt()));
}

#[tokio::test]
async fn a_merchant_sees_only_its_own_images_and_orders() {
    let (_sandbox, vipps) = support::start().await;
    upload(&vipps, "own-image").await;
    vipps
        .order_management()
        .put_category_v2()
        .payment_type("ecom")
        .order_id("own-order")
        .body(category(CategoryEnum::Delivery, "https://example.com/own", Some("own-image")))
        .send()
        .await
        .unwrap();

    let other = vipps.merchant("654321").unwrap().order_management();
    let err = other.get_order_v2().payment_type("ecom").order_id("own-order").send().await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let err = other
            .put_category_v2()
            .payment_type("ecom")
            .order_id("their-order")
            .body(category(CategoryEnum::Delivery, "https://example.com/theirs", Some("own-image")))
            .send()
            .await
            .unwrap_err();
    assert_eq!(field_of(&err), (Some(400), "imageId".into()));
    assert!(other.get_categories_v3().send().await.unwrap().into_inner().categories.is_empty());
}
