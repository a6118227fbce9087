//! The `sluice` binary: parses arguments and hands over to the subcommand.

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
