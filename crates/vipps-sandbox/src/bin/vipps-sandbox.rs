//! `cargo run -p vipps-sandbox -- --port 8080`: the sandbox as its own process.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;

/// A local, stateful stand-in for the Vipps MobilePay APIs.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime: u64,
    /// Serve as production does: no test-only endpoints (force-accept, force-approve).
    #[arg(long)]
    production: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("vipps-sandbox: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let addr = SocketAddr::new(args.host, args.port);
    let sandbox = vipps_sandbox::Sandbox::builder()
        .bind(addr)
        .token_lifetime(Duration::from_secs(args.token_lifetime))
        .test_mode(!args.production)
        .start()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "cannot listen on {addr}: the port is already in use (another sandbox?); \
                 choose another with --port N, or --port 0 for any free port"
            ),
            std::io::ErrorKind::AddrNotAvailable => format!("cannot listen on {addr}: {} is not an address of this machine (--host)", args.host),
            std::io::ErrorKind::PermissionDenied => format!("cannot listen on {addr}: permission denied (ports below 1024 need privileges); choose another with --port N"),
            _ => format!("cannot listen on {addr}: {e}"),
        })?;
    let c = sandbox.credentials();
    println!("vipps-sandbox listening on {}", sandbox.base_url());
    println!("  client_id:              {}", c.client_id);
    println!("  client_secret:          {}", c.client_secret);
    println!("  subscription key:       {}", c.subscription_key);
    println!("  merchant serial number: {}", c.merchant_serial_number);
    println!("  test mode:              {}", !args.production);
    let waited = tokio::signal::ctrl_c().await;
    sandbox.shutdown().await;
    waited.map_err(|e| format!("cannot wait for Ctrl-C: {e}"))
}
