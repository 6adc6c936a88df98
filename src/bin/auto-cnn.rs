//! `auto-cnn`: the AutoCNN architecture search (`neuroevo auto-cnn` does the same).
use clap::Parser;
use neuroevo::autocnn::{run_command, AutoCnnCommand};

#[derive(Parser)]
#[command(
    name = "auto-cnn",
    version,
    about = "Evolve CNN architectures (skip and pooling layers) with a genetic algorithm and export the best as TorchScript"
)]
struct Cli {
    #[command(subcommand)]
    command: AutoCnnCommand,
}

fn main() {
    neuroevo::device::tune_allocator();
    let cli = Cli::parse();
    if let Err(e) = run_command(&cli.command) {
        eprintln!("error: {e}");
        std::process::exit(if e.is_user_error() { 2 } else { 1 });
    }
}
