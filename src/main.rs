//! The `sluice` binary: parses arguments and hands over to the subcommand.

#[global_allocator]
static ALLOCATOR: sluice::alloc::SluiceAllocator = sluice::alloc::SluiceAllocator;

fn main() -> std::process::ExitCode {
    sluice::alloc::tune_system_allocator();
    sluice::cli::main()
}
