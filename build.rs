//! Stamps the build with its git commit, for `lifeboat --version` (bug reports name the exact
//! source). A build outside a git checkout (a source tarball) says "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let date = git(&["show", "-s", "--format=%cs", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LIFEBOAT_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=LIFEBOAT_GIT_DATE={date}");
    // Rebuild the stamp when HEAD moves: HEAD itself (a branch switch) and the branch's ref (a
    // commit), wherever this checkout keeps them (worktrees keep HEAD apart from the refs).
    // A path that does not exist would rerun this script (and rebuild the crate) every time.
    let mut watch = vec![];
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        watch.push(format!("{dir}/HEAD"));
    }
    if let (Some(common), Some(head_ref)) = (
        git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        watch.push(format!("{common}/{head_ref}"));
        watch.push(format!("{common}/packed-refs"));
    }
    // Outside git, only this script's own changes matter.
    watch.push("build.rs".into());
    for path in watch.iter().filter(|p| std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}
