//! `switchboard`: run a server (`serve`), follow channels (`sub`, with progress bars for pipelines), publish
//! (`pub`), call a served method (`call`), read retained state (`state`), watch a simulated ML pipeline
//! (`demo`), print a channel's history over REST (`history`), or mint a development token (`token`). Clients run on
//! smol through `switchboard-runtime`'s async `Client`.
//!
//! Exit codes: 0 done, 1 failed while running, 2 usage mistake. Logs go to stderr (`RUST_LOG`, default `info`);
//! stdout carries only the command's output.

mod args;
mod bench;
mod cluster;
mod connect;
mod demo;
mod error;
mod history;
mod idempotency;
mod limits;
mod logging;
mod progress;
mod pub_batch;
mod requests;
mod security;
mod serve;
mod signals;
mod storage;
mod sub;
mod token;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, CliCommand};
use error::CliError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; mistakes to stderr with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    logging::init();
    match smol::block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

async fn run(command: CliCommand) -> Result<(), CliError> {
    match command {
        CliCommand::Serve(args) => serve::serve(*args).await,
        CliCommand::Sub(args) => sub::sub(args).await,
        CliCommand::Pub(args) => requests::publish(args).await,
        CliCommand::Call(args) => requests::call(args).await,
        CliCommand::State(args) => requests::state(args).await,
        CliCommand::Demo(args) => demo::demo(args).await,
        CliCommand::Token(args) => token::token(args),
        CliCommand::History(args) => history::history(args).await,
        CliCommand::Bench(args) => bench::bench(args).await,
    }
}
