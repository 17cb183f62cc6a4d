//! `completions <SHELL>`: shell completion scripts, generated from the command line itself.

/// `completions`' arguments.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Prints the completion script.
pub fn run(args: &CompletionsArgs) -> u8 {
    let mut command = crate::cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "extension-manager",
        &mut std::io::stdout(),
    );
    crate::exit::OK
}
