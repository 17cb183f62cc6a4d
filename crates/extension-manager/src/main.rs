//! The `extension-manager` command; everything lives in the library.

fn main() -> std::process::ExitCode {
    extension_manager::main()
}
