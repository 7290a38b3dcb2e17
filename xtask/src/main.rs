//! `cargo xtask`: see `cargo xtask --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use xtask::Generated;
use std::time::Instant;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Automation for the Vipps MobilePay SDK workspace")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Normalize every spec of openapi/manifest.toml and (re)generate its crate.
    Codegen {
        /// Regenerate in memory, print a unified diff, and fail if the committed crates differ.
        #[arg(long)]
        check: bool,
        /// Only this API (a `name` of the manifest).
        #[arg(long)]
        api: Option<String>,
    },
    /// Download a published spec, write it over openapi/<spec> and record its SHA-256.
    Fetch {
        /// Only this API (a `name` of the manifest); all when absent.
        #[arg(long)]
        api: Option<String>,
        /// Fetch from this URL (one API) or directory (files named as in the manifest)
        /// instead of the manifest's published URL.
        #[arg(long)]
        from: Option<String>,
    },
    /// Add an API: manifest entry, fetch, wiring (workspace, facade feature, tests) and codegen.
    Add {
        /// The API's name (lowercase, dashes): the crate is `vipps-<name>`, the spec `<name>.yaml`.
        name: String,
        /// The published document: an http(s) URL or a file.
        #[arg(long)]
        from: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The workspace this is run in (or VIPPS_XTASK_ROOT, which tests point at a copy).
    let root = match xtask::workspace_root() {
        Ok(root) => root,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Codegen { check, api } => codegen(root, check, api.as_deref()),
        Command::Add { name, from } => match xtask::add::run(&root, &name, &from) {
            Ok(lines) => {
                lines.iter().for_each(|l| println!("{l}"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("add: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Fetch { api, from } => match xtask::fetch::run(&root, api.as_deref(), from.as_deref()) {
            Ok(lines) => {
                lines.iter().for_each(|l| println!("{l}"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn codegen(root: PathBuf, check: bool, api: Option<&str>) -> ExitCode {
    let started = Instant::now();
    let Generated { files, failures } = match xtask::generate_all(&root, api) {
        Ok(generated) => generated,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ok = true;
    if check {
        let diffs = xtask::drift(&root, &files);
        if diffs.is_empty() {
            println!("codegen --check: {} files up to date ({:.2?})", files.len(), started.elapsed());
        } else {
            diffs.iter().for_each(|d| eprintln!("{d}"));
            eprintln!("codegen --check: {} file(s) differ from the generator's output; run `cargo xtask codegen`", diffs.len());
            ok = false;
        }
    } else {
        match xtask::write(&root, &files) {
            Ok(changed) => {
                changed.iter().for_each(|p| println!("wrote {}", p.display()));
                println!("codegen: {} files, {} changed ({:.2?})", files.len(), changed.len(), started.elapsed());
            }
            Err(e) => {
                eprintln!("error: {e}");
                ok = false;
            }
        }
    }
    // Every API that could be generated was; now the ones that could not.
    for (name, error) in &failures {
        eprintln!("error: API `{name}` failed: {error}");
    }
    if !failures.is_empty() {
        let names: Vec<&str> = failures.iter().map(|(n, _)| n.as_str()).collect();
        eprintln!("codegen: {} API(s) failed: {}", failures.len(), names.join(", "));
    }
    if ok && failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
