//! Finds libseccomp for `combined`'s system-call filter (the `libseccomp` crate links `-lseccomp`).
//!
//! Debian and Ubuntu install the shared library, `libseccomp.so.2`, everywhere (apt itself uses it);
//! the `libseccomp.so` name the linker looks for comes only with the development package. So that
//! `cargo run -p combined` works on a fresh machine without it, this script points the linker at the
//! installed library through a `libseccomp.so` link in its own output directory. The program then
//! loads `libseccomp.so.2`, the library's own name (its SONAME), as it would have anyway.
//!
//! Static builds (`cargo xtask dist`, the VM's copied tests) set `LIBSECCOMP_LINK_TYPE=static` and
//! link `libseccomp.a` from libseccomp-dev instead; nothing here is needed for them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBSECCOMP_LINK_TYPE");
    println!("cargo:rerun-if-env-changed=LIBSECCOMP_LIB_PATH");
    println!("cargo:rerun-if-changed=build.rs");
    // The link order `cargo xtask dist` passes to the linker: a new one must relink the binary.
    println!("cargo:rerun-if-changed=link-order.txt");
    if std::env::var_os("LIBSECCOMP_LINK_TYPE").is_some() || compiler_finds("libseccomp.so").is_some() {
        return;
    }
    let Some(installed) = compiler_finds("libseccomp.so.2") else {
        panic!(
            "combined needs libseccomp, the library runc and crun compile seccomp filters with: \
             apt-get install libseccomp2 (or libseccomp-dev)"
        );
    };
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("libseccomp");
    std::fs::create_dir_all(&dir).expect("create the link directory");
    let link = dir.join("libseccomp.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&installed, &link).expect("link libseccomp.so");
    println!("cargo:rustc-link-search=native={}", dir.display());
}

/// The path the C compiler's linker would use for `file`, if it finds it (`cc -print-file-name`
/// prints the bare name back when it does not).
fn compiler_finds(file: &str) -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(cc)
        .arg(format!("-print-file-name={file}"))
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (path.is_absolute() && Path::new(&path).exists()).then_some(path)
}
