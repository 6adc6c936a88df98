//! `auto-cnn`: the AutoCNN architecture search (`neuroevo auto-cnn` does the same).
use clap::{CommandFactory, FromArgMatches};
use neuroevo::autocnn::{run_command, AutoCnnCommand};

#[derive(clap::Parser)]
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
    neuroevo::interrupt::install();
    let matches = neuroevo::run::args::command(Cli::command())
        .try_get_matches()
        .unwrap_or_else(|e| neuroevo::run::args::exit_on_clap_error(e));
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.command
        .set_given(neuroevo::run::args::given_flags(&Cli::command(), &matches));
    neuroevo::run::args::finish(run_command(&cli.command))
}
