//! Conveniences for the QR API: the QR code itself, as bytes with their media type.
//!
//! The QR API answers with JSON whose `url` points to the image, in the format the request's
//! `Accept` asked for (`image/png`, `image/svg+xml`), or, with `Accept: text/targetUrl`, holds
//! the text the QR code encodes. [`fetch_image`] downloads such a link; [`redirect_qr`] and
//! [`one_time_payment_qr`] make the call and download in one step.
//!
//! The image link needs no credentials, and none are sent to it: the download carries no
//! `Authorization`, subscription key or merchant header, only the runtime's time limit and
//! response size limit.

use std::time::Duration;

use vipps_core::Error;
use vipps_qr::types::{
    CreateMerchantRedirectQrAccept, GenerateOtpQrAccept, GetAllMerchantRedirectQrsAccept, GetMerchantRedirectQrByIdAccept,
    UpdateMerchantRedirectUrlAccept,
};
use vipps_qr::{Client, ClientInfo};

/// The format to ask the QR API for; converts into each operation's `Accept` type, so it can
/// be given to `.accept(...)` directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QrFormat {
    /// `image/png`.
    Png,
    /// `image/svg+xml`.
    Svg,
    /// `text/targetUrl`: the answer's `url` is what the QR code holds, not an image link.
    TargetUrl,
}

impl QrFormat {
    /// The media type sent in `Accept`.
    pub fn media_type(self) -> &'static str {
        match self {
            QrFormat::Png => "image/png",
            QrFormat::Svg => "image/svg+xml",
            QrFormat::TargetUrl => "text/targetUrl",
        }
    }
}

macro_rules! accept_from_format {
    ($($t:ty),*) => {$(
        impl From<QrFormat> for $t {
            fn from(f: QrFormat) -> Self {
                match f {
                    QrFormat::Png => <$t>::ImagePng,
                    QrFormat::Svg => <$t>::ImageSvgXml,
                    QrFormat::TargetUrl => <$t>::TextTargetUrl,
                }
            }
        }
    )*};
}
accept_from_format!(
    CreateMerchantRedirectQrAccept,
    GenerateOtpQrAccept,
    GetAllMerchantRedirectQrsAccept,
    GetMerchantRedirectQrByIdAccept,
    UpdateMerchantRedirectUrlAccept
);

/// A QR code as the QR API gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrImage {
    /// A PNG image (checked to start with the PNG signature).
    Png(Vec<u8>),
    /// An SVG image (checked to be UTF-8 with an `<svg` element).
    Svg(String),
    /// The text the QR code holds (`text/targetUrl`); nothing was downloaded.
    TargetUrl(String),
}

impl QrImage {
    /// Its media type: `image/png`, `image/svg+xml` or `text/targetUrl`.
    pub fn media_type(&self) -> &'static str {
        match self {
            QrImage::Png(_) => QrFormat::Png.media_type(),
            QrImage::Svg(_) => QrFormat::Svg.media_type(),
            QrImage::TargetUrl(_) => QrFormat::TargetUrl.media_type(),
        }
    }

    /// Its bytes, as they would be written to a file.
    pub fn bytes(&self) -> &[u8] {
        match self {
            QrImage::Png(b) => b,
            QrImage::Svg(s) | QrImage::TargetUrl(s) => s.as_bytes(),
        }
    }

    /// `(media type, bytes)`.
    pub fn into_parts(self) -> (&'static str, Vec<u8>) {
        let media = self.media_type();
        match self {
            QrImage::Png(b) => (media, b),
            QrImage::Svg(s) | QrImage::TargetUrl(s) => (media, s.into_bytes()),
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn malformed(status: u16, message: impl Into<String>) -> Error {
    Error::MalformedResponse { status: Some(status), path: None, message: message.into() }
}

/// Downloads the image an answer's `url` points to, without credentials, within the client's
/// whole-call time limit and response size limit. The image is what its `Content-Type` says
/// (`image/png` or `image/svg+xml`), checked against its first bytes; anything else is an
/// [`Error::MalformedResponse`], an error status an [`Error::Api`] (404 for an expired one-time
/// payment QR).
pub async fn fetch_image(client: &Client, url: &str) -> Result<QrImage, Error> {
    let runtime = client.inner().runtime();
    let limit = runtime.max_response_size();
    let after = runtime.timeouts().call;
    let download = async {
        let response = client.client().get(url).send().await.map_err(|e| Error::Transport {
            kind: if e.is_connect() { vipps_core::TransportKind::Connect } else { vipps_core::TransportKind::Send },
            source: e,
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let media = headers
            .get(vipps_core::reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_default();
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(Error::ResponseTooLarge { limit });
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Error::Transport { kind: vipps_core::TransportKind::Body, source: e })?
        {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(Error::ResponseTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let answer = vipps_core::hooks::Response::new(status, headers, bytes::Bytes::from(body));
            return Err(vipps_core::hooks::error_response(answer).await);
        }
        let status = status.as_u16();
        match media.as_str() {
            "image/png" if body.starts_with(PNG_SIGNATURE) => Ok(QrImage::Png(body)),
            "image/png" => Err(malformed(status, "the image/png body is not a PNG image")),
            "image/svg+xml" => match String::from_utf8(body) {
                Ok(svg) if svg.contains("<svg") => Ok(QrImage::Svg(svg)),
                _ => Err(malformed(status, "the image/svg+xml body is not an SVG image")),
            },
            "" => Err(malformed(status, "the image has no Content-Type")),
            other => Err(malformed(status, format!("the image is {other}, not image/png or image/svg+xml"))),
        }
    };
    match after {
        None => download.await,
        Some(after) => match tokio::time::timeout(after, download).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout { limit: vipps_core::Limit::Call, after }),
        },
    }
}

/// The image of an answer's `url` in `format`: downloaded for PNG and SVG, the `url` itself
/// for [`QrFormat::TargetUrl`].
async fn image_of(client: &Client, url: String, format: QrFormat) -> Result<QrImage, Error> {
    match format {
        QrFormat::TargetUrl => Ok(QrImage::TargetUrl(url)),
        QrFormat::Png | QrFormat::Svg => fetch_image(client, &url).await,
    }
}

/// The merchant redirect QR code `id` in `format`, `size` pixels square (100 to 2000; `None`
/// for the API's default).
pub async fn redirect_qr(client: &Client, id: &str, format: QrFormat, size: Option<u16>) -> Result<QrImage, Error> {
    let mut request = client.get_merchant_redirect_qr_by_id().id(id).accept(format);
    if let Some(size) = size {
        request = request.size(check_size(size)?);
    }
    let answer = request.send().await?.into_inner();
    image_of(client, answer.url, format).await
}

/// A one-time payment QR code for a payment's landing page (the ePayment create call's
/// `redirectUrl`) in `format`, and how many seconds it stays valid.
pub async fn one_time_payment_qr(
    client: &Client,
    landing_page_url: &str,
    format: QrFormat,
    size: Option<u16>,
) -> Result<(QrImage, Duration), Error> {
    let body = vipps_qr::types::OneTimePaymentQrRequest { url: landing_page_url.to_owned() };
    let mut request = client.generate_otp_qr().accept(format).body(body);
    if let Some(size) = size {
        request = request.size(check_size(size)?);
    }
    let answer = request.send().await?.into_inner();
    let valid = Duration::from_secs(answer.expires_in.max(0) as u64);
    Ok((image_of(client, answer.url, format).await?, valid))
}

/// `Size` is 100 to 2000 pixels; checked here, before anything is sent.
fn check_size(size: u16) -> Result<u16, Error> {
    if (100..=2000).contains(&size) {
        Ok(size)
    } else {
        Err(Error::invalid_input(format!("size: {size} is outside 100 to 2000 pixels")))
    }
}
