//! Shared by the msi fuzz targets: a scratch folder holding the files one run reads.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The scratch folder (created once per fuzzing process, in /dev/shm when it exists).
pub fn scratch() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("iocrun-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        // a template the substitution files can name, with references and an include
        std::fs::write(
            dir.join("t.template"),
            "record(ai, \"$(P)$(R=x)\") {\n  field(DESC, \"${D,a=$(P)}\")\n}\ninclude \"i.template\"\n",
        )
        .expect("template");
        std::fs::write(dir.join("i.template"), "# $(P) $(Q=$(R))\n").expect("include");
        dir
    })
    .clone()
}

/// Run msi with `opts` into a byte buffer, discarding warnings.
pub fn run(opts: &iocrun::expand::Options) {
    let mut warn = |_: &str| {};
    let _ = iocrun::expand::run(opts, Vec::new(), &mut warn);
}
