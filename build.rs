//! Build facts for `iocrun --version`: the git commit and the target triple.
//!
//! The commit comes from `git rev-parse` when building in a git checkout, else from the
//! `IOCRUN_GIT_COMMIT` environment variable (a source tarball, a container build without
//! `.git`), else it is `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=IOCRUN_GIT_COMMIT");
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            // rebuild when HEAD moves: HEAD itself, the branch it names, packed refs
            let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
            watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
            for name in watched {
                if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
            commit
        }
        None => std::env::var("IOCRUN_GIT_COMMIT")
            .ok()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unknown".to_owned()),
    };
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=IOCRUN_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=IOCRUN_BUILD_TARGET={target}");
}
