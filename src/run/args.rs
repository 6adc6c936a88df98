//! The options every job shares (one CLI convention) and the flags the user actually typed.
use std::path::PathBuf;

#[derive(Clone, Debug, Default, clap::Args)]
pub struct RunArgs {
    /// Run directory: everything the run writes, starting with its config.json
    /// (default runs/<job>-<UTC time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Random seed (default: a fresh one, printed and saved in config.json).
    #[arg(long)]
    pub seed: Option<u64>,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Continue the run in this directory from its last checkpoint. Stop criteria and output
    /// cadences may change; flags that shape the run may not.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    /// The flags given on the command line (`--time-budget`, ...), filled in by the CLI: the
    /// resume rule checks them. Empty when the library is called directly.
    #[arg(skip)]
    pub given: Vec<String>,
}

impl RunArgs {
    pub fn device_or_auto(&self) -> String {
        self.device.clone().unwrap_or_else(|| "auto".into())
    }
    /// Whether `flag` (e.g. "--generations") was typed.
    pub fn was_given(&self, flag: &str) -> bool {
        self.given.iter().any(|g| g == flag)
    }
}

/// The seed to use: the given one, or a fresh one from the clock.
pub fn seed_or_random(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (t.as_nanos() as u64 ^ (std::process::id() as u64).rotate_left(32)) % 1_000_000_000
    })
}

/// A binary's command line as parsed: a negative number is a value wherever a value is
/// expected (`--mutation-rate -0.1` reaches the flag's own check, which says why it is refused,
/// instead of being taken for a flag `-0`).
pub fn command(cmd: clap::Command) -> clap::Command {
    cmd.allow_negative_numbers(true).mut_subcommands(command)
}

/// The flags typed for the subcommand that runs (descending through nested subcommands), as
/// `--long-name`; values that come from defaults are not "given".
pub fn given_flags(cmd: &clap::Command, m: &clap::ArgMatches) -> Vec<String> {
    if let Some((name, sub)) = m.subcommand() {
        if let Some(sc) = cmd.find_subcommand(name) {
            return given_flags(sc, sub);
        }
    }
    cmd.get_arguments()
        .filter(|a| {
            m.try_get_raw(a.get_id().as_str()).is_ok()
                && m.value_source(a.get_id().as_str())
                    == Some(clap::parser::ValueSource::CommandLine)
        })
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

/// Prints a command-line mistake as one line (`error: ...`, exit code 2), as every other user
/// mistake; `--help` and `--version` print as clap does.
pub fn exit_on_clap_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit()
    }
    let text = e.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    let first = first.trim_start_matches("error: ");
    let hint = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("[possible values: ")
                .map(|v| format!(" (possible values: {})", v.trim_end_matches(']')))
        })
        .unwrap_or_default();
    eprintln!("error: {first}{hint}");
    std::process::exit(2)
}

/// Ends the process after a command: `error: ...` and exit code 2 for a user's mistake (1
/// otherwise); after Ctrl-C/SIGTERM, where to resume and exit code 130; else 0.
pub fn finish(result: crate::error::Result<Option<std::path::PathBuf>>) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    match result {
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(if e.is_user_error() { 2 } else { 1 });
        }
        Ok(dir) if crate::interrupt::requested() => {
            if let Some(dir) = dir {
                eprintln!("{}", crate::interrupt::message(&dir));
            }
            std::process::exit(crate::interrupt::EXIT_CODE);
        }
        Ok(_) => std::process::exit(0),
    }
}
