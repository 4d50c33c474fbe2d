//! Rebuilds the crate when a built-in task file changes (they are embedded with include_dir).
fn main() {
    println!("cargo:rerun-if-changed=../../tasks");
    println!("cargo:rerun-if-changed=chat_templates");
}
