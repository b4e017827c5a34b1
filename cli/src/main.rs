//! The `td` binary: parses the command line, opens the project, calls the engine, prints.
//! No SQL here: every read and write goes through `td_engine`.

mod agent_file;
mod commands;
mod config;
mod env;
mod hub;
mod monitor;
mod output;
mod progress;
mod replica;

use clap::Parser;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let json_mode = argv.iter().any(|a| a == "--json");
    let cli = match commands::Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                std::process::exit(0);
            }
            if json_mode {
                let msg = e.kind().to_string();
                let detail = e.to_string();
                let first = detail
                    .lines()
                    .next()
                    .unwrap_or(&msg)
                    .trim_start_matches("error: ")
                    .to_string();
                let err = anyhow::Error::new(output::CliError {
                    code: "invalid_input",
                    message: first,
                    detail: None,
                });
                output::print_error(true, &err);
            } else {
                let _ = e.print();
            }
            std::process::exit(1);
        }
    };
    if let Err(err) = commands::run(&cli) {
        output::print_error(cli.json || json_mode, &err);
        std::process::exit(1);
    }
}
