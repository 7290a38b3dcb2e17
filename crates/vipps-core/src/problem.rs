//! The error body of every Vipps MobilePay API, read one way.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// An error answer from an API: RFC 7807 problem details as the newer APIs send them, with
/// the older shapes (a JSON array of `{errorCode, errorMessage, contextId}`, gateway errors
/// such as `{statusCode, message}`, or plain text) folded into the same fields. Nothing is
/// dropped: fields without a place here are kept in [`Problem::other`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// A short summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The HTTP status the server gave in the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A longer explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A URI for this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Vipps MobilePay's id of the request, for support cases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// Trace id, sent by some APIs instead of `contextId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Field-level details, such as which property failed validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_details: Option<Value>,
    /// Every other field of the body, and for array bodies the array under `errors`.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Problem {
    /// Reads a problem from any JSON value: an object, an array of errors, or anything else.
    pub fn from_value(value: Value) -> Self {
        match value {
            Value::Object(map) => Self::from_object(map),
            Value::Array(items) => {
                let first = items.first().and_then(Value::as_object);
                let text = |keys: &[&str]| {
                    first.and_then(|o| keys.iter().find_map(|k| o.get(*k).and_then(Value::as_str).map(str::to_owned)))
                };
                let mut other = Map::new();
                let (title, detail, context_id) =
                    (text(&["errorGroup", "errorCode", "code"]), text(&["errorMessage", "message"]), text(&["contextId"]));
                other.insert("errors".into(), Value::Array(items));
                Problem { title, detail, context_id, other, ..Default::default() }
            }
            Value::Null => Problem::default(),
            other_value => Problem { detail: Some(other_value.to_string()), ..Default::default() },
        }
    }

    fn from_object(mut map: Map<String, Value>) -> Self {
        let mut take_str = |keys: &[&str]| -> Option<String> {
            for k in keys {
                if let Some(v) = map.get(*k) {
                    if let Some(s) = v.as_str() {
                        let s = s.to_owned();
                        map.remove(*k);
                        return Some(s);
                    }
                }
            }
            None
        };
        let type_ = take_str(&["type"]);
        let title = take_str(&["title", "errorCode"]);
        let detail = take_str(&["detail", "message", "errorMessage"]);
        let instance = take_str(&["instance"]);
        let context_id = take_str(&["contextId"]);
        let trace_id = take_str(&["traceId"]);
        let status = ["status", "statusCode"].iter().find_map(|k| {
            let v = map.get(*k)?.as_u64().and_then(|n| u16::try_from(n).ok())?;
            map.remove(*k);
            Some(v)
        });
        let extra_details = map.remove("extraDetails");
        Problem { type_, title, status, detail, instance, context_id, trace_id, extra_details, other: map }
    }

    /// A one-line summary: title and detail, as far as present.
    pub fn summary(&self) -> String {
        match (&self.title, &self.detail) {
            (Some(t), Some(d)) => format!("{t}: {d}"),
            (Some(t), None) => t.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => "no details given".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Problem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Problem::from_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_rfc7807_with_vipps_fields() {
        let p: Problem = serde_json::from_value(json!({
            "type": "https://example/problem", "title": "Bad Request", "status": 400,
            "detail": "amount too low", "instance": "/x", "contextId": "c-1",
            "extraDetails": [{"field": "amount", "text": "must be at least 100"}], "custom": 1
        }))
        .unwrap();
        assert_eq!(p.title.as_deref(), Some("Bad Request"));
        assert_eq!(p.status, Some(400));
        assert_eq!(p.context_id.as_deref(), Some("c-1"));
        assert_eq!(p.extra_details.unwrap()[0]["field"], "amount");
        assert_eq!(p.other["custom"], 1);
    }

    #[test]
    fn reads_error_arrays_and_gateway_errors() {
        let p = Problem::from_value(json!([{"errorGroup": "Payment", "errorMessage": "declined", "contextId": "x"}]));
        assert_eq!(p.title.as_deref(), Some("Payment"));
        assert_eq!(p.detail.as_deref(), Some("declined"));
        assert_eq!(p.other["errors"].as_array().unwrap().len(), 1);
        let g = Problem::from_value(json!({"statusCode": 401, "message": "Access denied due to invalid subscription key."}));
        assert_eq!(g.status, Some(401));
        assert!(g.detail.unwrap().contains("subscription key"));
    }

    #[test]
    fn survives_odd_values() {
        assert_eq!(Problem::from_value(json!(null)), Problem::default());
        assert_eq!(Problem::from_value(json!(42)).detail.as_deref(), Some("42"));
        assert_eq!(Problem::from_value(json!({"status": 99999})).status, None);
    }
}
