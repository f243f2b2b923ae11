//! Log setup for every function: JSON when Lambda asks for it, at the level
//! it asks for (the configuration reads both). Whatever level is asked for,
//! the HTTP and SDK internals stay at WARN at most: at DEBUG/TRACE they print
//! request and response bodies, and a CreateAccessKey or GetSecretValue body
//! holds a secret key.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Crates whose verbose logs could carry a request or response body.
const CAPPED: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_http",
    "aws_smithy_types",
    "aws_sigv4",
    "aws_runtime",
    "aws_config",
    "aws_sdk_iam",
    "aws_sdk_sts",
    "aws_sdk_s3",
    "aws_sdk_secretsmanager",
    "aws_sdk_cloudtrail",
    "aws_sdk_sns",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "reqwest",
    "lambda_runtime",
    "lambda_runtime_api_client",
];

/// The filter: `level` for our code, at most WARN for the [`CAPPED`] crates.
pub fn filter(level: LevelFilter) -> EnvFilter {
    let cap = level.min(LevelFilter::WARN);
    let mut filter = EnvFilter::default().add_directive(level.into());
    for krate in CAPPED {
        let directive = format!("{krate}={cap}")
            .parse()
            .expect("a crate name and a level form a directive");
        filter = filter.add_directive(directive);
    }
    filter
}

/// Installs the global subscriber writing to `writer`.
pub fn init_with_writer<W>(writer: W, level: LevelFilter, json: bool)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(level))
        .with_writer(writer);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Installs the global subscriber on stdout, as Lambda reads it.
pub fn init(level: LevelFilter, json: bool) {
    init_with_writer(std::io::stdout, level, json);
}
