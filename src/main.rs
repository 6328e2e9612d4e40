//! The `daca` binary: parse arguments, set up logging, run, and turn the outcome into an exit
//! code — 0 success, 1 a user's error (message, no backtrace), 2 an internal failure.

use std::process::ExitCode;

use clap::Parser;
use daca::ErrorKind;
use daca::cli::{self, Cli};
use daca::logs::LogFormat;

fn main() -> ExitCode {
    daca::panics::install_hook();
    let cli = Cli::parse();
    if let Some(result) = cli::run_single_threaded(&cli) {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{err}");
                ExitCode::from(1)
            }
        };
    }
    telemetry(cli.log_format, cli.verbose);
    daca::listen::raise_open_files_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("daca: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => match err.kind() {
            ErrorKind::User => {
                eprintln!("{err}");
                ExitCode::from(1)
            }
            ErrorKind::Internal => {
                eprintln!("daca: internal error: {err}");
                ExitCode::from(2)
            }
        },
    }
}

fn telemetry(format: LogFormat, verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "daca=info",
        1 => "daca=debug",
        _ => "daca=trace",
    };
    let filter = EnvFilter::try_from_env("DACA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.without_time().init(),
    }
}
