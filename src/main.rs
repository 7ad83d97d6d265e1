//! `gomirror`: see `gomirror --help` and the README.

fn main() {
    // A bug that panics is still a failure the exit code shows (2, fatal),
    // never Rust's 101; the panic message has been printed by then.
    let code = std::panic::catch_unwind(gomirror::cli::main).unwrap_or(2);
    std::process::exit(code);
}
