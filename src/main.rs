//! `gomirror`: see `gomirror --help` and the README.

fn main() {
    std::process::exit(gomirror::cli::main());
}
