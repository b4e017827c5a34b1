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
mod service;

/// td exits quietly when whoever reads its output goes away (`td list | head -1`), as td
/// does: a write to a closed pipe ends the process by SIGPIPE, the Unix default that Rust's
/// runtime replaces with "ignore" (which turns every later `println!` into a panic).
#[cfg(unix)]
fn quiet_on_closed_pipe() {
    // SAFETY: the first thing `main` does, before any thread exists; it restores the default
    // disposition of one signal. Sockets are written with MSG_NOSIGNAL and are not affected.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    #[cfg(unix)]
    quiet_on_closed_pipe();
    let argv: Vec<String> = std::env::args().collect();
    let json_mode = argv.iter().any(|a| a == "--json");
    let cli = match commands::parse(&argv) {
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
