//! The `neuroevo` command line: parses arguments and dispatches to the library.
use clap::{CommandFactory, FromArgMatches, Subcommand};
use neuroevo::autocnn::{run_command, AutoCnnCommand};
use neuroevo::fool::{run_fool, FoolArgs};
use neuroevo::gan::{run_gan, GanArgs};
use neuroevo::gari::{run_gari, GariArgs};
use neuroevo::run::Job;
use neuroevo::trainjob::{run_train, TrainArgs};

#[derive(clap::Parser)]
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
    /// Train a classifier given as a layer list (e.g. "S128-64 P:max S64-64") and export it as TorchScript.
    Train(TrainArgs),
    /// Evolve images a classifier assigns to a class with high confidence, and ask a judge classifier.
    Fool(FoolArgs),
    /// Search CNN architectures with a genetic algorithm (AutoCNN); same as the auto-cnn binary.
    #[command(name = "auto-cnn", subcommand)]
    AutoCnn(AutoCnnCommand),
    /// Train GANs with genetic algorithms: evolved MLP generator weights (--mode weights) or
    /// populations of DCGANs (--mode dcgan); FID, sample grids, TorchScript generator.
    Gan(GanArgs),
    /// Train the networks of auto-cnn searches run with --broker: pulls one task at a time from
    /// a NATS JetStream broker (nats://HOST:PORT) and sends its evaluation back.
    Worker(neuroevo::autocnn::worker::WorkerArgs),
}

fn main() {
    neuroevo::device::tune_allocator();
    neuroevo::interrupt::install();
    let matches = neuroevo::run::args::command(Cli::command())
        .try_get_matches()
        .unwrap_or_else(|e| neuroevo::run::args::exit_on_clap_error(e));
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = neuroevo::run::args::given_flags(&Cli::command(), &matches);
    match &mut cli.command {
        Command::Gari(a) => a.run.given = given,
        Command::Train(a) => a.run.given = given,
        Command::Fool(a) => {
            neuroevo::nn::inspect::set_trusted(a.trust_model);
            a.run.given = given
        }
        Command::Gan(a) => {
            neuroevo::nn::inspect::set_trusted(a.trust_model);
            a.run.given = given
        }
        Command::AutoCnn(c) => c.set_given(given),
        Command::Worker(_) => {}
    }
    let result = match &cli.command {
        Command::Gari(args) => run_gari(args).map(|s| {
            println!(
                "gari: {} generations (stopped by: {}) in {:.1} s, {:.0} generations/s; best fitness {:.4}, PSNR {:.2} dB",
                s.generations,
                s.stop_reason,
                s.elapsed_s, s.generations_per_s, s.best_fitness, s.psnr_db
            );
            println!("{}", Job::Gari.wrote(&s.run_dir));
            Some(s.run_dir)
        }),
        Command::Train(args) => run_train(args).map(|s| {
            let pct = |a: Option<f64>| a.map(|a| format!("{:.2}%", 100.0 * a)).unwrap_or_else(|| "-".into());
            println!(
                "train: {} ({} parameters) on {}: val acc {}, test acc {}",
                s.arch,
                s.parameters,
                s.dataset,
                pct(s.val_acc),
                pct(s.test_acc)
            );
            match &s.export {
                Some(e) => println!("exported {} (+ .features.pt, .json)", e.display()),
                None => println!("not exported: the run stopped early ({})", s.stop_reason),
            }
            let inside = s.export.as_ref().is_some_and(|e| e.starts_with(&s.run_dir));
            println!("{}", Job::Train.wrote_with(&s.run_dir, inside));
            Some(s.run_dir)
        }),
        Command::Fool(args) => run_fool(args).map(|s| {
            println!("class  confidence  judge(class)  judge top class");
            for r in &s.classes {
                println!(
                    "{:>5}  {:>10.6}  {:>12}  {}",
                    r.label,
                    r.confidence,
                    r.judge_confidence.map(|j| format!("{j:.4}")).unwrap_or_else(|| "-".into()),
                    match (r.judge_top, r.judge_top_confidence) {
                        (Some(t), Some(c)) => format!("{t} ({c:.4})"),
                        _ => "-".into(),
                    }
                );
            }
            println!("{:.1} s; {}", s.seconds, Job::Fool.wrote(&s.run_dir));
            Some(s.run_dir)
        }),
        Command::AutoCnn(cmd) => run_command(cmd),
        Command::Worker(args) => neuroevo::autocnn::worker::run_worker(args).map(|()| None),
        Command::Gan(args) => run_gan(args).map(|s| {
            println!(
                "gan: {:?} mode, {} generations, {} epochs, {:.1} s training ({:.1} CPU s; {:.1} s wall in all); FID {:.2} (best {:.2}) on {} ({} samples)",
                s.mode, s.generations, s.epochs, s.train_s, s.train_cpu_s, s.wall_s, s.final_fid, s.best_fid,
                s.fid_extractor.display(), s.fid_samples
            );
            println!("{}", Job::Gan.wrote(&s.run_dir));
            Some(s.run_dir)
        }),
    };
    neuroevo::run::args::finish(result)
}
