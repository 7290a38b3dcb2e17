//! Webhook verification: the Webhooks API guide's sample, each failure, sign → verify, hostile
//! input, and the typed events.

use std::time::{Duration, SystemTime};

use vipps_core::webhooks::{self, Delivery, Event, EventName, PaymentEventName, Verifier, WebhookError};

// "Request authentication" in the Webhooks API guide: the sample secret, request and headers.
const GUIDE_SECRET: &str = "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A==";
const GUIDE_HOST: &str = "webhook.site";
const GUIDE_PATH: &str = "/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63";
const GUIDE_BODY: &str = r#"{"some-unique-content":"ee6e441b-cc4a-46f8-895d-a5af79bcc233/hello-world"}"#;
const GUIDE_DATE: &str = "Thu, 30 Mar 2023 08:38:32 GMT";
const GUIDE_HASH: &str = "lNlsp1XA03N34HrQsVzPgJKtC+r7l/RBF4V3JQUWMj4=";
const GUIDE_AUTHORIZATION: &str =
    "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U=";

fn guide_time() -> SystemTime {
    httpdate::parse_http_date(GUIDE_DATE).unwrap()
}

fn guide_delivery<'a>(method: &'a str, path: &'a str, body: &'a str) -> Delivery<'a> {
    Delivery::new(method, path, body.as_bytes())
        .header("Host", GUIDE_HOST)
        .header("x-ms-date", GUIDE_DATE)
        .header("x-ms-content-sha256", GUIDE_HASH)
        .header("Authorization", GUIDE_AUTHORIZATION)
}

#[test]
fn the_guides_sample_verifies() {
    let verifier = Verifier::new(GUIDE_SECRET);
    verifier
        .verify_at(&guide_delivery("POST", GUIDE_PATH, GUIDE_BODY), guide_time())
        .unwrap();
    // Within the tolerance on either side.
    let t = guide_time();
    verifier
        .verify_at(
            &guide_delivery("POST", GUIDE_PATH, GUIDE_BODY),
            t + Duration::from_secs(299),
        )
        .unwrap();
    verifier
        .verify_at(
            &guide_delivery("POST", GUIDE_PATH, GUIDE_BODY),
            t - Duration::from_secs(299),
        )
        .unwrap();
}

#[test]
fn sign_reproduces_the_guides_headers() {
    let signed = webhooks::sign(
        &GUIDE_SECRET.into(),
        "POST",
        GUIDE_PATH,
        GUIDE_HOST,
        guide_time(),
        GUIDE_BODY.as_bytes(),
    );
    assert_eq!(signed.x_ms_date, GUIDE_DATE);
    assert_eq!(signed.x_ms_content_sha256, GUIDE_HASH);
    assert_eq!(signed.authorization, GUIDE_AUTHORIZATION);
}

#[test]
fn a_changed_body_is_a_content_hash_mismatch() {
    let body = GUIDE_BODY.replace("hello-world", "hello-there");
    let err = Verifier::new(GUIDE_SECRET).verify_at(&guide_delivery("POST", GUIDE_PATH, &body), guide_time());
    assert!(matches!(err, Err(WebhookError::ContentHashMismatch)), "{err:?}");
}

#[test]
fn a_changed_path_query_method_or_host_is_a_signature_mismatch() {
    let verifier = Verifier::new(GUIDE_SECRET);
    let now = guide_time();
    for (method, path) in [
        ("POST", "/e2cee29b-012e-4f1d-8ef4-e95fd74a7a64"),     // path
        ("POST", "/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63?x=1"), // query added
        ("POST", "/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63/"),    // trailing slash
        ("PUT", GUIDE_PATH),                                   // method
    ] {
        let err = verifier.verify_at(&guide_delivery(method, path, GUIDE_BODY), now);
        assert!(
            matches!(err, Err(WebhookError::SignatureMismatch)),
            "{method} {path}: {err:?}"
        );
    }
    let other_host = guide_delivery("POST", GUIDE_PATH, GUIDE_BODY).header("Host", "evil.example");
    // Host given twice is refused before anything else.
    assert!(matches!(
        verifier.verify_at(&other_host, now),
        Err(WebhookError::DuplicateHeader("host"))
    ));
    let other_host = Delivery::new("POST", GUIDE_PATH, GUIDE_BODY.as_bytes())
        .header("host", "evil.example")
        .header("x-ms-date", GUIDE_DATE)
        .header("x-ms-content-sha256", GUIDE_HASH)
        .header("authorization", GUIDE_AUTHORIZATION);
    assert!(matches!(
        verifier.verify_at(&other_host, now),
        Err(WebhookError::SignatureMismatch)
    ));
}

#[test]
fn a_changed_query_is_a_signature_mismatch() {
    let secret = "s3cret".into();
    let body = br#"{"x":1}"#;
    let signed = webhooks::sign(&secret, "POST", "/hook?shop=1&b=2", "h.example", guide_time(), body);
    let delivery = |path| {
        let mut d = Delivery::new("POST", path, body);
        for (name, value) in signed.iter() {
            d = d.header(name, value);
        }
        d.header("host", "h.example")
    };
    let verifier = Verifier::new("s3cret");
    verifier.verify_at(&delivery("/hook?shop=1&b=2"), guide_time()).unwrap();
    for path in ["/hook?shop=2&b=2", "/hook?b=2&shop=1", "/hook", "/hook?shop=1&b=2&c=3"] {
        let err = verifier.verify_at(&delivery(path), guide_time());
        assert!(matches!(err, Err(WebhookError::SignatureMismatch)), "{path}: {err:?}");
    }
}

#[test]
fn a_wrong_secret_is_a_signature_mismatch() {
    for secret in [
        "",
        "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A=",
        "x",
    ] {
        let err = Verifier::new(secret).verify_at(&guide_delivery("POST", GUIDE_PATH, GUIDE_BODY), guide_time());
        assert!(
            matches!(err, Err(WebhookError::SignatureMismatch)),
            "{secret:?}: {err:?}"
        );
    }
}

#[test]
fn a_stale_or_future_date_is_rejected_with_its_age() {
    let verifier = Verifier::new(GUIDE_SECRET);
    let delivery = guide_delivery("POST", GUIDE_PATH, GUIDE_BODY);
    let late = guide_time() + Duration::from_secs(301);
    match verifier.verify_at(&delivery, late) {
        Err(WebhookError::Stale { age }) => assert_eq!(age, Duration::from_secs(301)),
        other => panic!("{other:?}"),
    }
    // Today, the guide's sample from 2023 is stale with the system clock.
    assert!(matches!(verifier.verify(&delivery), Err(WebhookError::Stale { .. })));
    let early = guide_time() - Duration::from_secs(400);
    match verifier.verify_at(&delivery, early) {
        Err(WebhookError::FromTheFuture { ahead }) => assert_eq!(ahead, Duration::from_secs(400)),
        other => panic!("{other:?}"),
    }
    // A wider tolerance accepts both.
    let lenient = Verifier::new(GUIDE_SECRET).with_tolerance(Duration::from_secs(3600));
    assert_eq!(lenient.tolerance(), Duration::from_secs(3600));
    lenient.verify_at(&delivery, late).unwrap();
    lenient.verify_at(&delivery, early).unwrap();
    // A zero tolerance accepts only the very second.
    let strict = Verifier::new(GUIDE_SECRET).with_tolerance(Duration::ZERO);
    strict.verify_at(&delivery, guide_time()).unwrap();
    assert!(matches!(
        strict.verify_at(&delivery, guide_time() + Duration::from_secs(1)),
        Err(WebhookError::Stale { .. })
    ));
}

#[test]
fn a_forged_stale_delivery_is_a_signature_mismatch_not_stale() {
    // Freshness is checked last: `Stale` means the signature was good.
    let d = Delivery::new("POST", GUIDE_PATH, GUIDE_BODY.as_bytes())
        .header("Host", GUIDE_HOST)
        .header("x-ms-date", "Wed, 29 Mar 2023 08:38:32 GMT")
        .header("x-ms-content-sha256", GUIDE_HASH)
        .header("Authorization", GUIDE_AUTHORIZATION);
    let err = Verifier::new(GUIDE_SECRET).verify_at(&d, guide_time());
    assert!(matches!(err, Err(WebhookError::SignatureMismatch)), "{err:?}");
}

#[test]
fn each_missing_header_is_named() {
    let all = [
        ("Host", GUIDE_HOST),
        ("x-ms-date", GUIDE_DATE),
        ("x-ms-content-sha256", GUIDE_HASH),
        ("Authorization", GUIDE_AUTHORIZATION),
    ];
    let expected = ["host", "x-ms-date", "x-ms-content-sha256", "authorization"];
    for (left_out, name) in expected.iter().enumerate() {
        let mut d = Delivery::new("POST", GUIDE_PATH, GUIDE_BODY.as_bytes()).header("x-other", "1");
        for (i, (n, v)) in all.iter().enumerate() {
            if i != left_out {
                d = d.header(n, *v);
            }
        }
        match Verifier::new(GUIDE_SECRET).verify_at(&d, guide_time()) {
            Err(WebhookError::MissingHeader(missing)) => assert_eq!(missing, *name),
            other => panic!("{name}: {other:?}"),
        }
        let message = WebhookError::MissingHeader(name).to_string();
        assert!(message.contains(name), "{message}");
    }
}

#[test]
fn header_names_match_without_regard_to_case() {
    let d = Delivery::new("POST", GUIDE_PATH, GUIDE_BODY.as_bytes())
        .header("HOST", GUIDE_HOST)
        .header("X-MS-Date", GUIDE_DATE)
        .header("X-Ms-Content-Sha256", GUIDE_HASH)
        .header("authorization", GUIDE_AUTHORIZATION);
    Verifier::new(GUIDE_SECRET).verify_at(&d, guide_time()).unwrap();
}

#[test]
fn sign_then_verify_round_trips() {
    let secret = "090a478d-37ff-4e77-970e-d457aeb3f2a1";
    let now = SystemTime::now();
    for (method, path, host, body) in [
        ("POST", "/", "localhost:8080", &b""[..]),
        (
            "POST",
            "/hooks/vipps?shop=1&x=%20y",
            "shop.example",
            br#"{"msn":"123456"}"#,
        ),
        ("POST", "/\u{e6}\u{f8}\u{e5}", "[::1]:1", &[0xff, 0x00, 0xfe][..]),
    ] {
        let signed = webhooks::sign(&secret.into(), method, path, host, now, body);
        let mut d = Delivery::new(method, path, body).header("host", host);
        for (name, value) in signed.iter() {
            d = d.header(name, value);
        }
        Verifier::new(secret)
            .verify(&d)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        Verifier::new(secret).verify_at(&d, now).unwrap();
        // And through `http`.
        let mut request = http::Request::builder().method(method).uri(path).header("host", host);
        for (name, value) in signed.iter() {
            request = request.header(name, value);
        }
        let request = request.body(body.to_vec()).unwrap();
        Verifier::new(secret).verify_http(&request).unwrap();
        let err = Verifier::new("another secret").verify_http(&request);
        assert!(matches!(err, Err(WebhookError::SignatureMismatch)), "{err:?}");
    }
}

#[test]
fn http_requests_use_the_path_and_query_and_fall_back_to_the_authority() {
    let secret = "k";
    let now = SystemTime::now();
    let body =
        br#"{"eventType":"recurring.agreement-activated.v1","agreementId":"agr_1","occurred":"2024-01-01T00:00:00Z"}"#;
    let signed = webhooks::sign(&secret.into(), "POST", "/a/b?c=d", "rx.example", now, body);
    // HTTP/2 style: no Host header, the authority in the URI.
    let mut request = http::Request::builder()
        .method("POST")
        .uri("https://rx.example/a/b?c=d");
    for (name, value) in signed.iter() {
        request = request.header(name, value);
    }
    let request = request.body(&body[..]).unwrap();
    match Verifier::new(secret).verify_http_event(&request).unwrap() {
        Event::Agreement(a) => {
            assert_eq!(a.agreement_id, "agr_1");
            assert_eq!(a.event_type, EventName::AgreementActivated);
        }
        other => panic!("{other:?}"),
    }
    // Two Authorization headers are refused, whichever one is genuine.
    let mut request = http::Request::builder()
        .method("POST")
        .uri("/a/b?c=d")
        .header("host", "rx.example");
    for (name, value) in signed.iter() {
        request = request.header(name, value);
    }
    let request = request
        .header("authorization", "HMAC-SHA256 junk")
        .body(&body[..])
        .unwrap();
    let err = Verifier::new(secret).verify_http(&request);
    assert!(
        matches!(err, Err(WebhookError::DuplicateHeader("authorization"))),
        "{err:?}"
    );
}

#[test]
fn malformed_authorization_and_dates_are_told_apart() {
    let verifier = Verifier::new(GUIDE_SECRET);
    let sig = "agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U=";
    for authorization in [
        String::new(),
        "HMAC-SHA256".to_owned(),
        format!("Bearer SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}"),
        format!("HMAC-SHA256 SignedHeaders=host;x-ms-date;x-ms-content-sha256&Signature={sig}"),
        format!("HMAC-SHA256 Signature={sig}"),
        "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256".to_owned(),
        "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=not base64!".to_owned(),
        "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=AAAA".to_owned(),
        format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}&Signature={sig}"),
        format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}&Extra=1"),
        format!(
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}{}",
            "A".repeat(2000)
        ),
    ] {
        let d = Delivery::new("POST", GUIDE_PATH, GUIDE_BODY.as_bytes())
            .header("Host", GUIDE_HOST)
            .header("x-ms-date", GUIDE_DATE)
            .header("x-ms-content-sha256", GUIDE_HASH)
            .header("Authorization", &authorization);
        let err = verifier.verify_at(&d, guide_time());
        assert!(
            matches!(err, Err(WebhookError::MalformedAuthorization)),
            "{authorization:?}: {err:?}"
        );
    }
    for date in [
        "",
        "yesterday",
        "2023-03-30T08:38:32Z",
        "Thu, 30 Mar 2023 08:38:32 GMT but longer than any date could be",
    ] {
        let d = Delivery::new("POST", GUIDE_PATH, GUIDE_BODY.as_bytes())
            .header("Host", GUIDE_HOST)
            .header("x-ms-date", date)
            .header("x-ms-content-sha256", GUIDE_HASH)
            .header("Authorization", GUIDE_AUTHORIZATION);
        let err = verifier.verify_at(&d, guide_time());
        assert!(matches!(err, Err(WebhookError::BadDate)), "{date:?}: {err:?}");
    }
}

#[test]
fn hostile_input_never_panics_and_is_refused() {
    let huge = vec![b'A'; 1 << 20];
    let non_utf8: &[u8] = &[0xff, 0xfe, 0x80, 0xc3, 0x28];
    let nul: &[u8] = b"HMAC-SHA256 \0\0\0";
    let unicode = "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=\u{1F600}\u{1F600}";
    let equals = "HMAC-SHA256 ===&&&===";
    let values: Vec<&[u8]> = vec![
        b"",
        &huge,
        non_utf8,
        nul,
        unicode.as_bytes(),
        equals.as_bytes(),
        b" ",
        b"\r\n",
        b"&",
        b"=",
    ];
    let verifier = Verifier::new(GUIDE_SECRET);
    let now = guide_time();
    let mut checked = 0;
    for header in 0..4 {
        for value in &values {
            let mut v: [&[u8]; 4] = [
                GUIDE_HOST.as_bytes(),
                GUIDE_DATE.as_bytes(),
                GUIDE_HASH.as_bytes(),
                GUIDE_AUTHORIZATION.as_bytes(),
            ];
            v[header] = value;
            for body in [GUIDE_BODY.as_bytes(), &huge[..], non_utf8] {
                let d = Delivery::new("POST", GUIDE_PATH, body)
                    .header("host", v[0])
                    .header("x-ms-date", v[1])
                    .header("x-ms-content-sha256", v[2])
                    .header("authorization", v[3]);
                let result = verifier.verify_event_at(&d, now);
                assert!(result.is_err(), "accepted a hostile delivery: header {header}");
                assert!(format!("{d:?}").len() < 4 << 20);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 4 * values.len() * 3);
    // Odd methods and paths, and extreme clocks.
    for (method, path) in [("", ""), ("\u{0}", "\u{0}"), ("POST", "%%%"), ("P\nOST", "/\n")] {
        let d = guide_delivery(method, path, GUIDE_BODY);
        assert!(matches!(
            verifier.verify_at(&d, now),
            Err(WebhookError::SignatureMismatch)
        ));
    }
    let d = guide_delivery("POST", GUIDE_PATH, GUIDE_BODY);
    assert!(verifier.verify_at(&d, SystemTime::UNIX_EPOCH).is_err());
    assert!(verifier
        .verify_at(&d, SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40))
        .is_err());
    assert!(Verifier::new(GUIDE_SECRET)
        .with_tolerance(Duration::MAX)
        .verify_at(&d, SystemTime::UNIX_EPOCH)
        .is_ok());
}

#[test]
fn nothing_shows_the_secret() {
    let verifier = Verifier::new(GUIDE_SECRET);
    assert!(!format!("{verifier:?}").contains("A0+AeKBRG2"));
    let errors = [
        WebhookError::MissingHeader("host"),
        WebhookError::DuplicateHeader("host"),
        WebhookError::BadDate,
        WebhookError::Stale {
            age: Duration::from_secs(1),
        },
        WebhookError::FromTheFuture {
            ahead: Duration::from_secs(1),
        },
        WebhookError::ContentHashMismatch,
        WebhookError::MalformedAuthorization,
        WebhookError::SignatureMismatch,
    ];
    for e in &errors {
        assert!(e.is_authentication());
        for shown in [format!("{e}"), format!("{e:?}")] {
            assert!(!shown.contains("A0+AeKBRG2"), "{shown}");
        }
    }
    let displayed: std::collections::HashSet<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(displayed.len(), errors.len(), "each failure has its own message");
}

// --- Events ---------------------------------------------------------------------------

fn sign_and_parse(body: &str) -> Result<Event, WebhookError> {
    let now = SystemTime::now();
    let signed = webhooks::sign(&"k".into(), "POST", "/h", "h", now, body.as_bytes());
    let mut d = Delivery::new("POST", "/h", body.as_bytes()).header("host", "h");
    for (name, value) in signed.iter() {
        d = d.header(name, value);
    }
    Verifier::new("k").verify_event_at(&d, now)
}

#[test]
fn epayment_events_parse_with_unknown_fields_kept() {
    let body = r#"{"msn":"1234567","reference":"acme-shop-123-order123abc","pspReference":"3343121302",
        "name":"AUTHORIZED","amount":{"currency":"NOK","value":1000},"timestamp":"2024-12-31T00:00:00Z",
        "idempotencyKey":null,"success":true,"newField":{"a":1}}"#;
    let Event::Payment(p) = sign_and_parse(body).unwrap() else {
        panic!()
    };
    assert_eq!(p.msn, "1234567");
    assert_eq!(p.reference, "acme-shop-123-order123abc");
    assert_eq!(p.psp_reference, "3343121302");
    assert_eq!(p.name, PaymentEventName::Authorized);
    assert_eq!(p.amount.value, 1000);
    assert_eq!(p.amount.currency, "NOK");
    assert_eq!(p.idempotency_key, None);
    assert!(p.success);
    assert_eq!(p.other["newField"]["a"], 1);
    assert_eq!(Event::Payment(p).name(), Some(EventName::PaymentAuthorized));

    let names = [
        "CREATED",
        "ABORTED",
        "EXPIRED",
        "CANCELLED",
        "CAPTURED",
        "REFUNDED",
        "AUTHORIZED",
        "TERMINATED",
    ];
    for name in names {
        let body = body.replace("AUTHORIZED", name);
        let event = sign_and_parse(&body).unwrap();
        let expected = format!("epayments.payment.{}.v1", name.to_ascii_lowercase());
        let got = event.name().unwrap();
        assert_eq!(got.as_str(), expected);
        assert!(!matches!(got, EventName::Unknown(_)), "{name}");
    }
    let event = sign_and_parse(&body.replace("AUTHORIZED", "PAUSED")).unwrap();
    let Event::Payment(p) = &event else { panic!() };
    assert_eq!(p.name, PaymentEventName::Unknown("PAUSED".into()));
    assert_eq!(
        event.name(),
        Some(EventName::Unknown("epayments.payment.paused.v1".into()))
    );
    // A known kind without a required field is an error, after verification.
    let err = sign_and_parse(&body.replace(r#""success":true,"#, "")).unwrap_err();
    assert!(
        matches!(err, WebhookError::Payload(_)) && !err.is_authentication(),
        "{err:?}"
    );
}

#[test]
fn recurring_events_parse_and_unknown_names_are_kept() {
    let agreement = r#"{"agreementId":"agr_5kSeqz","agreementUUID":"b7d2c5a4-9d8e-4a7b-9f61-1b2c3d4e5f60",
        "agreementExternalId":"sub-1","eventType":"recurring.agreement-stopped.v1","occurred":"2024-01-01T10:00:00Z",
        "actor":"USER","msn":"123456"}"#;
    let Event::Agreement(a) = sign_and_parse(agreement).unwrap() else {
        panic!()
    };
    assert_eq!(a.event_type, EventName::AgreementStopped);
    assert_eq!(
        a.agreement_uuid.as_deref(),
        Some("b7d2c5a4-9d8e-4a7b-9f61-1b2c3d4e5f60")
    );
    assert_eq!(a.actor.as_deref(), Some("USER"));

    let charge = r#"{"agreementId":"agr_5kSeqz","chargeId":"chr-1","chargeExternalId":null,"transactionId":"t-1",
        "amount":49900,"currency":"NOK","chargeType":"RECURRING","amountCaptured":49900,"amountCanceled":0,
        "amountRefunded":0,"eventType":"recurring.charge-captured.v1","occurred":"2024-01-01T10:00:00Z",
        "failureCode":null,"msn":"123456"}"#;
    let Event::Charge(c) = sign_and_parse(charge).unwrap() else {
        panic!()
    };
    assert_eq!(c.event_type, EventName::ChargeCaptured);
    assert_eq!(c.amount_captured, Some(49900));
    assert_eq!(c.transaction_id.as_deref(), Some("t-1"));
    assert!(c.other.contains_key("failureCode"));

    let minimal_failed = r#"{"agreementId":"agr_1","chargeId":"chr-2","eventType":"recurring.charge-creation-failed.v1",
        "occurred":"2024-01-01T10:00:00Z","failureReason":"agreement not active"}"#;
    let Event::Charge(c) = sign_and_parse(minimal_failed).unwrap() else {
        panic!()
    };
    assert_eq!(c.event_type, EventName::ChargeCreationFailed);
    assert_eq!(c.failure_reason.as_deref(), Some("agreement not active"));

    // An unknown charge event type still reads as a charge, its name kept.
    let future = minimal_failed.replace("charge-creation-failed", "charge-disputed");
    let event = sign_and_parse(&future).unwrap();
    assert!(
        matches!(&event, Event::Charge(c) if c.event_type == EventName::Unknown("recurring.charge-disputed.v1".into()))
    );
    // So is a body of no known kind.
    let other = r#"{"eventType":"user.checked-in.v1","msn":"123456"}"#;
    let event = sign_and_parse(other).unwrap();
    assert!(matches!(&event, Event::Unknown(v) if v["msn"] == "123456"));
    assert_eq!(event.name(), Some(EventName::Unknown("user.checked-in.v1".into())));
    // Not JSON at all: a payload error.
    assert!(matches!(sign_and_parse("not json"), Err(WebhookError::Payload(_))));
}

#[test]
fn event_names_round_trip_through_strings_and_serde() {
    assert_eq!(EventName::KNOWN.len(), 18);
    for name in EventName::KNOWN {
        assert_eq!(&EventName::from(name.as_str()), name);
        let json = serde_json::to_string(name).unwrap();
        assert_eq!(&serde_json::from_str::<EventName>(&json).unwrap(), name);
        assert!(name.as_str().starts_with("epayments.payment.") || name.as_str().starts_with("recurring."));
    }
    assert_eq!(
        "recurring.charge-canceled.v1".parse::<EventName>().unwrap(),
        EventName::ChargeCanceled
    );
    let unknown: EventName = serde_json::from_str(r#""qr.something.v9""#).unwrap();
    assert_eq!(unknown, EventName::Unknown("qr.something.v9".into()));
    assert_eq!(serde_json::to_string(&unknown).unwrap(), r#""qr.something.v9""#);
    assert_eq!(unknown.to_string(), "qr.something.v9");
}
