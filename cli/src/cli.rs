//! The command tree. Groups (`portal`, `org`) hold subcommands of one
//! subject; the stack commands stand at the top.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::out::Format;

const EXIT_CODES: &str = "\
Exit codes:
  0  done; what was checked holds
  1  what was checked does not hold (a failing check, portal answers the client cannot read, a failed rotation, problems in the status): the output says what and what to do
  2  usage or configuration error (bad arguments, no such stack, not a connector's stack, no AWS region or credentials, a file that is not a HAR, AWS refused your rights)
  3  AWS or the portal could not be reached (network, timeouts, 5xx, throttled until the end)

AWS credentials and region are yours, found as the AWS CLI finds them (environment, profile, SSO, instance role); --region overrides the region. No command prints a secret value.";

/// The operator command of the Defender for Cloud Apps connector.
#[derive(Debug, Parser)]
#[command(
    name = "cloudapps",
    version,
    about = "Operate the Defender for Cloud Apps connector of an AWS account: check the portal's contract, see the connector's state, run its health checks, rotate its key; see the organization through its hub.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// How to print the result: a table for people, or one JSON document.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// The AWS region (default: AWS_REGION, or your profile's).
    #[arg(long, global = true)]
    pub region: Option<String>,

    /// No progress line on stderr.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The portal's API: check it against this project's contract, read-only.
    #[command(subcommand)]
    Portal(PortalCommand),

    /// The connector's state, from the stack: user, key, rotation, trail, portal, last health run.
    #[command(after_help = EXIT_CODES)]
    Status(StackArgs),

    /// Run the health checks now, from this machine with your credentials (or the deployed function with --remote).
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),

    /// Rotate the connector's access key now, and follow the four steps until AWSCURRENT moves.
    #[command(after_help = EXIT_CODES)]
    Rotate(RotateArgs),

    /// The organization hub: every member account as the hub records it.
    #[command(subcommand)]
    Org(OrgCommand),
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Every member account from the hub's table (run with credentials of the hub's account): status, instance, key age, last test, detail; the counts per status. Exit 1 when any account is in error.
    #[command(after_help = EXIT_CODES)]
    Status(OrgStatusArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("hub").required(true).args(["table", "stack"])))]
pub struct OrgStatusArgs {
    /// The hub's DynamoDB table (the hub stack's TableName output).
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,

    /// The hub's CloudFormation stack (its TableName output is read).
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PortalCommand {
    /// Authenticate, list the AWS instances (`find`), read one's state (`status`) and the activities API once, and compare every answer with the contract, field by field. Never writes to the tenant.
    #[command(after_help = EXIT_CODES)]
    Probe(ProbeArgs),

    /// Read a HAR file (the browser's developer tools, saved while adding an AWS instance and pressing "Test API") and print the PORTAL_ROUTES value and field names to use. Masks every secret it holds.
    #[command(after_help = EXIT_CODES)]
    Capture(CaptureArgs),
}

#[derive(Debug, Args)]
pub struct StackArgs {
    /// The connector's CloudFormation stack (name or ARN).
    #[arg(long)]
    pub stack: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Invoke the stack's deployed health function (lambda:InvokeFunction) instead of checking from here.
    #[arg(long)]
    pub remote: bool,

    /// Repair what is safe, as HealthRepair=true does (re-attach the stack's policies, restart its trail). Off by default: a check run by hand changes nothing.
    #[arg(long, conflicts_with = "remote")]
    pub repair: bool,

    /// Route overrides for the portal (PORTAL_ROUTES JSON), when the deployed functions have them.
    #[arg(long, value_name = "JSON", conflicts_with = "remote")]
    pub routes: Option<String>,

    /// Each check's limit, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 40)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// How long to follow the rotation before giving up, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub timeout: u64,

    /// Pause between two looks at the secret and the logs, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub poll_ms: u64,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("credentials").required(true).args(["credentials_secret", "token_env"])))]
pub struct ProbeArgs {
    /// The tenant's API URL, e.g. https://contoso.us3.portal.cloudappsecurity.com
    #[arg(long)]
    pub url: String,

    /// A Secrets Manager secret holding {"Token"} or {"TenantId","ClientId","ClientSecret"} (the stack's PortalCredentialsSecretArn).
    #[arg(long, value_name = "ARN")]
    pub credentials_secret: Option<String>,

    /// The name of an environment variable holding an API token.
    #[arg(long, value_name = "NAME")]
    pub token_env: Option<String>,

    /// Route overrides to try (PORTAL_ROUTES JSON, e.g. '{"find": "/cas/api/v1/app_connectors/list/"}').
    #[arg(long, value_name = "JSON")]
    pub routes: Option<String>,

    /// Read this instance (by name) rather than the first AWS instance listed.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,

    /// Entra ID's login endpoint (sovereign clouds).
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://login.microsoftonline.com"
    )]
    pub login_url: String,

    /// The whole probe's limit, in seconds (a throttled tenant is waited for within it).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The HAR file the browser saved.
    pub file: PathBuf,
}
