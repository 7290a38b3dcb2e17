//! `cargo xtask fetch` against a loopback HTTP server.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// Serves `(status, body)` answers, one connection each, on 127.0.0.1; returns the base URL.
fn serve(answers: Vec<(u16, String)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (status, body) in answers {
            let Ok((mut stream, _)) = listener.accept() else { return };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    url
}

/// Serves files by request path (404 for others) on 127.0.0.1 for `connections` requests;
/// returns the base URL.
fn serve_files(files: Vec<(&'static str, String)>, connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut stream, _)) = listener.accept() else { return };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
            let (status, body) = match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => (200, body.clone()),
                None => (404, String::new()),
            };
            let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    url
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)).unwrap()
}

fn scratch() -> PathBuf {
    let root = xtask::workspace_root().unwrap();
    let dir = std::env::temp_dir().join(format!("vipps-fetch-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(dir.join("openapi")).unwrap();
    for f in ["manifest.toml", "accesstoken.yaml", "psp.yaml"] {
        std::fs::copy(root.join("openapi").join(f), dir.join("openapi").join(f)).unwrap();
    }
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

const PUBLISHED: &str = "openapi: 3.0.0\ninfo: {title: Access token, version: 2.0.0}\npaths: {}\n";

#[test]
fn fetch_writes_the_spec_and_its_checksum() {
    let dir = scratch();
    let url = serve(vec![(200, PUBLISHED.to_owned())]);
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["fetch", "--api", "accesstoken", "--from", &format!("{url}/docs/swagger.yaml")])
        .env("VIPPS_XTASK_ROOT", &dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("openapi/accesstoken.yaml")).unwrap(), PUBLISHED);
    let manifest = xtask::manifest(&dir).unwrap();
    let sum = xtask::fetch::sha256(PUBLISHED.as_bytes());
    assert_eq!(manifest.get("accesstoken").unwrap().sha256, sum);
    assert_ne!(manifest.get("psp").unwrap().sha256, sum, "other entries are untouched");
    let text = std::fs::read_to_string(dir.join("openapi/manifest.toml")).unwrap();
    assert!(text.starts_with("# The APIs of the SDK."), "comments are kept");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn fetch_refuses_errors_and_non_openapi_documents() {
    let dir = scratch();
    let before = std::fs::read_to_string(dir.join("openapi/accesstoken.yaml")).unwrap();
    let url = serve(vec![(404, "not here".into()), (200, "<html>hello</html>".into())]);
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["fetch", "--api", "accesstoken", "--from", &format!("{url}/x.yaml")])
            .env("VIPPS_XTASK_ROOT", &dir)
            .output()
            .unwrap();
        assert!(!out.status.success());
    }
    assert_eq!(std::fs::read_to_string(dir.join("openapi/accesstoken.yaml")).unwrap(), before);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn fetch_from_a_directory() {
    let dir = scratch();
    let src = dir.join("published");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("psp.yaml"), PUBLISHED).unwrap();
    let lines = xtask::fetch::run(&dir, Some("psp"), Some(src.to_str().unwrap())).unwrap();
    assert!(lines[0].contains("wrote openapi/psp.yaml"));
    assert_eq!(std::fs::read_to_string(dir.join("openapi/psp.yaml")).unwrap(), PUBLISHED);
    assert!(xtask::fetch::run(&dir, Some("nope"), None).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn fetch_brings_the_referenced_documents_and_records_their_checksums() {
    let dir = scratch();
    std::fs::create_dir_all(dir.join("openapi/psp.refs")).unwrap();
    std::fs::write(dir.join("openapi/psp.refs/stale.yaml"), "left from an older fetch").unwrap();
    let other = fixture("external-ref.refs/order-management/docs/swagger.yaml");
    let path_item = fixture("external-ref.refs/paths/receipt.yaml");
    // Laid out as the published documents are: each refers to the others by relative URL.
    let url = serve_files(
        vec![
            ("/epayment/docs/openapi.yaml", fixture("external-ref.yaml")),
            ("/epayment/docs/paths/receipt.yaml", path_item.clone()),
            ("/order-management/docs/swagger.yaml", other.clone()),
            ("/epayment/docs/callbackPrefix.yaml", fixture("external-ref.refs/callbackPrefix.yaml")),
        ],
        4,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["fetch", "--api", "psp", "--from", &format!("{url}/epayment/docs/openapi.yaml")])
        .env("VIPPS_XTASK_ROOT", &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("wrote openapi/psp.refs/order-management/docs/swagger.yaml from {url}/order-management/docs/swagger.yaml")), "{stdout}");

    let refs = dir.join("openapi/psp.refs");
    assert_eq!(std::fs::read_to_string(refs.join("order-management/docs/swagger.yaml")).unwrap(), other);
    assert_eq!(std::fs::read_to_string(refs.join("paths/receipt.yaml")).unwrap(), path_item);
    assert!(!refs.join("stale.yaml").exists(), "a new fetch replaces the old documents");
    let manifest = xtask::manifest(&dir).unwrap();
    let sums = manifest.refs("psp");
    assert_eq!(sums.len(), 3, "{sums:?}");
    assert_eq!(sums["order-management/docs/swagger.yaml"], xtask::fetch::sha256(other.as_bytes()));
    assert_eq!(sums["paths/receipt.yaml"], xtask::fetch::sha256(path_item.as_bytes()));
    assert!(manifest.refs("accesstoken").is_empty());

    // Codegen now finds everything beside the spec, without the server.
    let mut api = manifest.get("psp").unwrap().clone();
    // The fixture stands in for another API: the PSP operations the manifest renames are not in it.
    api.operation_names.clear();
    let files = xtask::generate::generate_crate(&dir, &api).unwrap_or_else(|e| panic!("{e}"));
    let lib = &files[&PathBuf::from("crates/vipps-psp/src/lib.rs")];
    assert!(lib.contains("pub struct Receipt") && lib.contains("pub fn send_receipt("));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn fetch_from_a_directory_resolves_references_against_it() {
    let dir = scratch();
    let src = dir.join("published");
    std::fs::create_dir_all(src.join("epayment/docs/paths")).unwrap();
    std::fs::create_dir_all(src.join("order-management/docs")).unwrap();
    std::fs::write(src.join("epayment/docs/psp.yaml"), fixture("external-ref.yaml")).unwrap();
    std::fs::write(src.join("epayment/docs/paths/receipt.yaml"), fixture("external-ref.refs/paths/receipt.yaml")).unwrap();
    std::fs::write(src.join("epayment/docs/callbackPrefix.yaml"), fixture("external-ref.refs/callbackPrefix.yaml")).unwrap();
    std::fs::write(src.join("order-management/docs/swagger.yaml"), "not: [the, right, one]").unwrap();
    let from = src.join("epayment/docs");
    let fetched = xtask::fetch::run(&dir, Some("psp"), Some(from.to_str().unwrap()));
    assert!(fetched.is_ok(), "{fetched:?}");
    let kept = std::fs::read_to_string(dir.join("openapi/psp.refs/order-management/docs/swagger.yaml")).unwrap();
    assert_eq!(kept, "not: [the, right, one]");

    // A referenced document that cannot be read leaves the spec as it was.
    let before = std::fs::read_to_string(dir.join("openapi/psp.yaml")).unwrap();
    std::fs::remove_file(src.join("order-management/docs/swagger.yaml")).unwrap();
    std::fs::write(src.join("epayment/docs/psp.yaml"), fixture("external-ref.yaml").replace("Payment:", "Payment2:")).unwrap();
    let err = xtask::fetch::run(&dir, Some("psp"), Some(from.to_str().unwrap())).unwrap_err();
    assert!(err.contains("order-management/docs/swagger.yaml"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("openapi/psp.yaml")).unwrap(), before);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_local_document_reads_its_absolute_references_from_copies_beside_it() {
    let dir = scratch();
    let src = dir.join("published");
    let copy = src.join("docs.example.invalid/order-management/2.3.24/docs/swagger.yaml");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let other = fixture("external-ref.refs/order-management/docs/swagger.yaml");
    std::fs::write(&copy, &other).unwrap();
    // The published layout: one absolute reference, which no network could answer here
    // (`.invalid` never resolves).
    let absolute = "https://docs.example.invalid/order-management/2.3.24/docs/swagger.yaml";
    let doc = "openapi: 3.0.0\ninfo: {title: Payments, version: 1.0.0}\npaths: {}\ncomponents:\n  schemas:\n    Receipt:\n      $ref: 'ABS#/components/schemas/Receipt'\n"
        .replace("ABS", absolute);
    std::fs::write(src.join("psp.yaml"), &doc).unwrap();

    let lines = xtask::fetch::run(&dir, Some("psp"), Some(src.join("psp.yaml").to_str().unwrap())).unwrap_or_else(|e| panic!("{e}"));
    let kept = dir.join("openapi/psp.refs/docs.example.invalid/order-management/2.3.24/docs/swagger.yaml");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), other);
    assert_eq!(std::fs::read_to_string(dir.join("openapi/psp.yaml")).unwrap(), doc, "the document is kept as published");
    assert!(lines.iter().any(|l| l.contains(absolute) && l.contains("its copy")), "{lines:?}");
    let sums = xtask::manifest(&dir).unwrap().refs("psp");
    assert_eq!(sums["docs.example.invalid/order-management/2.3.24/docs/swagger.yaml"], xtask::fetch::sha256(other.as_bytes()));

    // Without the copy, the reference is fetched from its URL, which fails here, and the
    // spec stays as it was.
    std::fs::remove_file(&copy).unwrap();
    std::fs::write(src.join("psp.yaml"), doc.replace("Receipt:", "Receipt2:")).unwrap();
    let err = xtask::fetch::run(&dir, Some("psp"), Some(src.join("psp.yaml").to_str().unwrap())).unwrap_err();
    assert!(err.contains("docs.example.invalid"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("openapi/psp.yaml")).unwrap(), doc);
    let _ = std::fs::remove_dir_all(dir);
}
