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
    let matches = Cli::command()
        .try_get_matches()
        .unwrap_or_else(|e| neuroevo::run::args::exit_on_clap_error(e));
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.command
        .set_given(neuroevo::run::args::given_flags(&Cli::command(), &matches));
    match run_command(&cli.command) {
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(if e.is_user_error() { 2 } else { 1 });
        }
        Ok(Some(dir)) if neuroevo::interrupt::requested() => {
            eprintln!("{}", neuroevo::interrupt::message(&dir));
            std::process::exit(neuroevo::interrupt::EXIT_CODE);
        }
        Ok(_) => {}
    }
}
