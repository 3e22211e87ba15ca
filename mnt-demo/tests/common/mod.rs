//! Test support shared by the mount chapter's test files: every test that mounts runs on a scratch
//! directory of its own and checks that the host's mount table is as it found it
//! (mount_namespaces(7)).

use mnt_demo::scratch::Scratch;
use nskit::testing::{exclusive, mount_table};

/// Runs `body` with a fresh scratch directory, and checks that the host's mount table is unchanged
/// afterwards, whether the body succeeded or not (the scratch directory is gone too).
pub fn on_clean_host(body: impl FnOnce(&Scratch)) {
    let _guard = exclusive();
    let before = mount_table();
    let scratch = Scratch::new().unwrap();
    let dir = scratch.path().to_owned();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&scratch)));
    drop(scratch);
    assert_eq!(mount_table(), before, "the host's mount table changed");
    assert!(!dir.exists(), "{} is still there", dir.display());
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
