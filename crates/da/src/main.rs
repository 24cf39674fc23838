//! `da`: the command line of agnes. It parses arguments, finds `duckdb` and
//! the agnes extension, runs the extension's functions in a `duckdb` child
//! process, and prints what they report. The sync logic lives in the
//! extension (and its engine); nothing here talks to the server.

mod args;
mod as_hook;
mod detach;
mod duckdb;
mod hooks;
mod login;
mod manifest;
mod outcome;
mod record;
mod render;
mod signals;
mod status;
mod summary;
mod sync;
mod upload;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, HooksCommand};
use crate::outcome::{Failure, Outcome};

/// The exit statuses, decided here and nowhere else.
fn main() -> ExitCode {
    match try_main() {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Partial) => ExitCode::from(2),
        Err(failure) if failure.message.is_empty() => ExitCode::from(1),
        Err(failure) => {
            let message = match failure.quiet {
                true => render::one_line(&failure.message),
                false => failure.message,
            };
            render::err(&format!("da: {message}\n"));
            ExitCode::from(1)
        }
    }
}

/// Parses the command line and runs the command.
fn try_main() -> Result<Outcome, Failure> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are not errors; a usage error is status 1,
        // not clap's 2, which here means "some tables failed".
        Err(e) if !e.use_stderr() => {
            render::out(&e.render().to_string());
            return Ok(Outcome::Done);
        }
        Err(e) => {
            render::err(&e.render().to_string());
            return Err(Failure::reported());
        }
    };
    signals::install();
    if cli.version {
        return status::version(&cli);
    }
    let Some(command) = &cli.command else {
        use clap::CommandFactory;
        let e = Cli::command().error(
            clap::error::ErrorKind::MissingSubcommand,
            "a command is needed: sync, manifest, status, hooks, login or completions",
        );
        render::err(&e.render().to_string());
        return Err(Failure::reported());
    };
    match command {
        Command::Sync(a) if a.detach && a.detached_run.is_none() => detach::run(&cli, a),
        Command::Sync(a) => {
            // An old hook line: run as the installed hook does.
            if let Some(hooked) = as_hook::hooked(a) {
                return detach::run(&cli, &hooked);
            }
            let result = record::around(a, |record| match a.upload_only {
                true => upload::run(&cli, a, record),
                false => sync::run(&cli, a, record),
            });
            if a.detached_run.is_some() {
                detach::tidy(a);
            }
            result
        }
        Command::Manifest(a) => manifest::run(&cli, a),
        Command::Hooks {
            command: HooksCommand::Install(a),
        } => hooks::install(a),
        Command::Login(a) => login::run(a),
        Command::Status(a) => status::run(&cli, a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "da", &mut out);
            render::out(&String::from_utf8_lossy(&out));
            Ok(Outcome::Done)
        }
    }
}
