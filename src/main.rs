//! The `expose` command line.

fn main() {
    println!("expose: give a local port a public URL (the CLI is being written)");
}
