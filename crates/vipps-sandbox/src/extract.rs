//! Request extractors whose rejections are problem+json answers naming the field.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::problem::ApiError;

/// A JSON body read into a generated request type. A missing field, a wrong type or a broken
/// constraint (pattern, length, enum) is a 400 that names the field by its JSON path.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + Serialize, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = bytes::Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            let title = status.canonical_reason().unwrap_or("Bad Request");
            ApiError::new(status, title, format!("could not read the body: {}", e.body_text()))
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Reads JSON into `T`, naming the failing field on error. Nothing but whitespace may follow
/// the JSON value.
///
/// The generated enums a response can hold read a value they do not list as `Unknown`, and
/// such a value does not serialize; the API refuses it in a request, so the sandbox does too:
/// a body that does not serialize back is a 400 naming the field.
pub fn parse_json<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: T = read_json(bytes)?;
    if let Err(e) = serde_path_to_error::serialize(&value, serde_json::value::Serializer) {
        let field = match e.path().to_string() {
            p if p == "." => "body".to_owned(),
            p => p,
        };
        return Err(ApiError::invalid(field, format!("unknown variant: {}", e.into_inner())));
    }
    Ok(value)
}

fn read_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("body", "a JSON body is required"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = deserialize_naming_the_field(de)?;
    de.end().map_err(|_| ApiError::invalid("body", "nothing but whitespace may follow the JSON value"))?;
    Ok(value)
}

fn deserialize_naming_the_field<T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = match e.path().to_string() {
            // "." is the root, "?" a syntax error before any field.
            p if p == "." || p == "?" => ".".to_owned(),
            p => p,
        };
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde names a missing field in its message, not in the path.
        let field = match message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
            Some(missing) if path == "." => missing.to_owned(),
            Some(missing) => format!("{path}.{missing}"),
            None if path == "." => "body".to_owned(),
            None => path,
        };
        let reason = message.split(" at line ").next().unwrap_or(&message).to_owned();
        ApiError::invalid(field, reason)
    })
}

/// Checks an absolute `http(s)://host...` URL without spaces (the specs' `format: uri` for
/// callback and link fields); a 400 naming `field` otherwise.
pub fn check_url(field: &str, value: &str) -> Result<(), ApiError> {
    let rest = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(h) if !h.is_empty() && !value.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(ApiError::invalid(field, "must be an absolute http(s) URL")),
    }
}

/// Path parameters; a parameter that does not parse is a 400 naming it.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::invalid("path", e.body_text()))
    }
}

/// Query parameters; a parameter that does not parse is a 400 naming it.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::invalid("query", e.body_text()))
    }
}

/// The `Merchant-Serial-Number` header, required by the merchant-facing APIs: 4 to 10 digits.
pub struct Msn(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Msn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        msn(&parts.headers).map(Msn)
    }
}

/// Reads and checks `Merchant-Serial-Number`.
pub fn msn(headers: &axum::http::HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get("merchant-serial-number")
        .ok_or_else(|| ApiError::invalid("Merchant-Serial-Number", "the header is required"))?
        .to_str()
        .map_err(|_| ApiError::invalid("Merchant-Serial-Number", "must be 4 to 10 digits"))?;
    if !(4..=10).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid("Merchant-Serial-Number", "must be 4 to 10 digits"));
    }
    Ok(value.to_owned())
}

/// The `Idempotency-Key` header, for operations that require one: at most 40 characters
/// and none of `# ? / \`... Absence is a 400 naming the header.
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get("idempotency-key")
            .ok_or_else(|| ApiError::invalid("Idempotency-Key", "the header is required"))?
            .to_str()
            .map_err(|_| ApiError::invalid("Idempotency-Key", "must be ASCII"))?;
        if value.is_empty() || value.len() > 40 || value.contains(['#', '?', '/', '\\']) {
            return Err(ApiError::invalid("Idempotency-Key", "1 to 40 characters, none of # ? / \\"));
        }
        Ok(IdempotencyKey(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, serde::Serialize, Debug)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Outer {
        amount: i64,
        inner: Inner,
    }

    #[derive(serde::Deserialize, serde::Serialize, Debug)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Inner {
        order_id: String,
    }

    fn field_of(body: &str) -> (String, String) {
        let e = parse_json::<Outer>(body.as_bytes()).unwrap_err();
        assert_eq!(e.status, 400);
        e.fields[0].clone()
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(r#"{"inner":{"orderId":"x"}}"#).0, "amount");
        assert_eq!(field_of(r#"{"amount":1,"inner":{}}"#).0, "inner.orderId");
        assert_eq!(field_of(r#"{"amount":"ten","inner":{"orderId":"x"}}"#).0, "amount");
        assert_eq!(field_of(r#"{"amount":1,"inner":{"orderId":3}}"#).0, "inner.orderId");
        assert_eq!(field_of("").0, "body");
        assert_eq!(field_of("{not json").0, "body");
        assert_eq!(field_of(r#"{"amount":1,"inner":{"orderId":"x"}} xyz"#).0, "body");
        assert!(parse_json::<Outer>(b"{\"amount\":1,\"inner\":{\"orderId\":\"x\"}} \n").is_ok());
        let (_, reason) = field_of(r#"{"amount":1,"inner":{}}"#);
        assert!(reason.contains("missing field"), "{reason}");
    }

    #[test]
    fn generated_constraints_name_the_field() {
        // The generated Recurring charge type checks orderId's pattern while deserializing.
        let body = r#"{"amount":1000,"transactionType":"DIRECT_CAPTURE","description":"d","due":"2030-01-01","retryDays":0,"type":"RECURRING","orderId":"has space"}"#;
        let e = parse_json::<vipps_recurring::types::CreateChargeV3>(body.as_bytes()).unwrap_err();
        assert_eq!(e.fields[0].0, "orderId", "{e}");
    }

    #[test]
    fn unlisted_enum_values_in_requests_are_refused() {
        // `TransactionType` reads an unlisted value as `Unknown` (it is in responses too); the
        // API refuses it in a request, and so does the sandbox, naming the field.
        let body = r#"{"amount":1000,"transactionType":"CAPTURE_LATER","description":"d","due":"2030-01-01","retryDays":0,"type":"RECURRING","orderId":"o-1"}"#;
        let e = parse_json::<vipps_recurring::types::CreateChargeV3>(body.as_bytes()).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.fields[0].0, "transactionType", "{e}");
        assert!(e.fields[0].1.contains("CAPTURE_LATER"), "{e}");
    }

    #[test]
    fn merchant_serial_numbers_are_checked() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(msn(&h).unwrap_err().fields[0].0, "Merchant-Serial-Number");
        h.insert("merchant-serial-number", "12a456".parse().unwrap());
        assert!(msn(&h).is_err());
        h.insert("merchant-serial-number", "123456".parse().unwrap());
        assert_eq!(msn(&h).unwrap(), "123456");
    }
}
