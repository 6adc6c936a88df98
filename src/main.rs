//! The `neuroevo` command line: parses arguments and dispatches to the library.
use clap::{Parser, Subcommand};
use neuroevo::gari::{run_gari, GariArgs};

#[derive(Parser)]
#[command(
    name = "neuroevo",
    version,
    about = "Neuroevolution on libtorch: genetic algorithms for images and neural networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reproduce an image with a genetic algorithm (GARI).
    Gari(GariArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Gari(args) => run_gari(args).map(|s| {
            println!(
                "gari: {} generations (stopped by: {}) in {:.1} s, {:.0} generations/s; best fitness {:.4}, PSNR {:.2} dB",
                s.generations,
                serde_json::json!(s.stop_reason).as_str().unwrap_or("?"),
                s.elapsed_s, s.generations_per_s, s.best_fitness, s.psnr_db
            );
            println!(
                "wrote {0}/best.png, compare.png, fitness.png, log.jsonl, snapshots/, config.json, result.json",
                s.run_dir.display()
            );
        }),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(if e.is_user_error() { 2 } else { 1 });
    }
}
