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
