//! `portal-emulator`: serves the portal contract on 127.0.0.1 for the local
//! run. Once listening it prints `{"port":N,"url":"http://127.0.0.1:N"}` on
//! stdout, logs one line per request on stderr, and exits when its stdin
//! closes (so a parent that dies never leaves it behind).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use portal_emulator::{Config, Emulator, EntraApp};
use tokio::io::AsyncReadExt;

const USAGE: &str = "usage: portal-emulator [--port N] [--limit N] [--window-ms N] [--test-ms N]
  [--token-lifetime-s N] [--retry-after] [--aws-endpoint URL] [--region R]
  [--entra-tenant-id T --entra-client-id C] [--routes JSON]
environment: EMULATOR_API_TOKEN (the API token), EMULATOR_ENTRA_CLIENT_SECRET
  (the Entra app's secret), AWS_ENDPOINT_URL, AWS_REGION";

fn main() -> ExitCode {
    let (config, port) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("portal-emulator: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("portal-emulator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, port)) {
        Ok(()) => {
            // Do not wait for connections or tests still in flight.
            runtime.shutdown_background();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portal-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, port: u16) -> std::io::Result<()> {
    let emulator = Emulator::start_on(config, port).await?;
    emulator.log_to_stderr();
    let port = emulator.url.rsplit(':').next().unwrap_or_default();
    let mut stdout = std::io::stdout();
    writeln!(stdout, r#"{{"port":{port},"url":"{}"}}"#, emulator.url)?;
    stdout.flush()?;
    // Serve until stdin reaches end of file (or fails).
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 1024];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    Ok(())
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(Config, u16), String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut config = Config {
        api_token: env("EMULATOR_API_TOKEN"),
        aws_endpoint: env("AWS_ENDPOINT_URL"),
        aws_region: env("AWS_REGION").unwrap_or_else(|| "us-east-1".to_string()),
        ..Config::default()
    };
    let (mut port, mut tenant_id, mut client_id) = (0, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = number(&flag, &value()?)?,
            "--limit" => config.limit = number(&flag, &value()?)?,
            "--window-ms" => config.window = Duration::from_millis(number(&flag, &value()?)?),
            "--test-ms" => config.test_duration = Duration::from_millis(number(&flag, &value()?)?),
            "--token-lifetime-s" => {
                config.token_lifetime = Duration::from_secs(number(&flag, &value()?)?)
            }
            "--retry-after" => config.retry_after_on_throttle = true,
            "--aws-endpoint" => config.aws_endpoint = Some(value()?),
            "--region" => config.aws_region = value()?,
            "--entra-tenant-id" => tenant_id = Some(value()?),
            "--entra-client-id" => client_id = Some(value()?),
            "--routes" => {
                let json = value()?;
                config.routes = serde_json::from_str::<BTreeMap<String, String>>(&json)
                    .map_err(|e| format!("--routes is not a JSON object of paths: {e}"))?;
            }
            "-h" | "--help" => return Err("help".to_string()),
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    config.entra = match (tenant_id, client_id) {
        (None, None) => None,
        (Some(tenant_id), Some(client_id)) => Some(EntraApp {
            tenant_id,
            client_id,
            client_secret: env("EMULATOR_ENTRA_CLIENT_SECRET")
                .ok_or("the Entra app needs EMULATOR_ENTRA_CLIENT_SECRET")?,
        }),
        _ => return Err("--entra-tenant-id and --entra-client-id go together".to_string()),
    };
    Ok((config, port))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a valid number"))
}
