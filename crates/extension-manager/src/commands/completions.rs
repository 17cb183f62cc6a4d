//! `completions <SHELL>`: shell completion scripts, generated from the command line itself.

/// `completions`' arguments.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Prints the completion script of `command` (the whole command line, which the caller
/// passes in, so that this module does not reach back into `cli`). A reader that stops
/// early (`| head -1`) is not an error; any other write failure is (exit 1, said on stderr).
pub fn run(args: &CompletionsArgs, mut command: clap::Command) -> u8 {
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "extension-manager", &mut script);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&script).and_then(|()| stdout.flush()) {
        Ok(()) => crate::exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::exit::OK,
        Err(e) => {
            eprintln!("error: cannot write the completion script: {e}");
            crate::exit::FAILURE
        }
    }
}
