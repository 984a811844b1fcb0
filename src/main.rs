use clap::Parser;

fn main() {
    let cli = match ragctl::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap exits 0 for --help/--version, 2 for usage errors (the README's exit code table).
            std::process::exit(if e.use_stderr() { ragctl::error::exit::USAGE } else { ragctl::error::exit::OK });
        }
    };
    std::process::exit(ragctl::commands::run(cli));
}
