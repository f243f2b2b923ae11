//! `cloudapps`: the operator command of the Defender for Cloud Apps
//! connector. It uses the library the functions use (`cloudapps`), with the
//! caller's AWS credentials and region. See `cloudapps --help` and
//! README.md, "Day two".

mod aws;
mod b64;
mod capture;
mod check;
mod cli;
mod contract;
mod logs;
mod org;
mod out;
mod outcome;
mod probe;
mod rotate;
mod status;

use std::process::ExitCode;

use clap::Parser;
use serde_json::json;

use cli::{Cli, Command, OrgCommand, PortalCommand};
use out::Out;
use outcome::{Exit, Outcome};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.output, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.error(&format!("could not start: {e}"));
            return ExitCode::from(Exit::Usage.code());
        }
    };
    let outcome = runtime.block_on(run(&cli, &out));
    let exit = match outcome {
        Ok(exit) => exit,
        Err(failure) => {
            if out.json() {
                out.document(&json!({
                    "error": {"exit": failure.exit.code(), "message": failure.message}
                }));
            }
            out.error(&failure.message);
            failure.exit
        }
    };
    out.done();
    ExitCode::from(exit.code())
}

async fn run(cli: &Cli, out: &Out) -> Outcome {
    let region = cli.region.as_deref();
    match &cli.command {
        Command::Portal(PortalCommand::Probe(args)) => probe::run(args, region, out).await,
        Command::Portal(PortalCommand::Capture(args)) => capture::run(args, out),
        Command::Status(args) => status::run(args, region, out).await,
        Command::Check(args) => check::run(args, region, out).await,
        Command::Rotate(args) => rotate::run(args, region, out).await,
        Command::Org(OrgCommand::Status(args)) => org::status(args, region, out).await,
    }
}
