//! CPU, memory, threads and file descriptors of a process from `/proc/<pid>`, the figures the
//! standard `process_*` collectors export. Used for the supervisor
//! itself and, under the `epics_ioc_` prefix, for the IOC child.

use nix::unistd::{sysconf, SysconfVar};

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    /// Unix time the process started.
    pub start_time_seconds: f64,
}

/// Read `/proc/<pid>` (or `/proc/self` for `None`); `None` when the process is gone.
pub fn read(pid: Option<u32>) -> Option<ProcStats> {
    let dir = pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"));
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // the command name is in parentheses and may hold spaces; fields follow the last ')'
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    let tick = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let page = sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as f64;
    let open_fds = std::fs::read_dir(format!("{dir}/fd")).map_or(0, |d| d.count() as u64);
    Some(ProcStats {
        cpu_seconds: (field(14)? + field(15)?) / tick,
        resident_bytes: (field(24)? * page) as u64,
        virtual_bytes: field(23)? as u64,
        threads: field(20)? as u64,
        open_fds,
        max_fds: max_fds(&dir).unwrap_or(0),
        start_time_seconds: boot_time().unwrap_or(0.0) + field(22)? / tick,
    })
}

/// The soft "Max open files" limit from `/proc/<pid>/limits`.
fn max_fds(dir: &str) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("{dir}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `btime` from `/proc/stat`: when the machine booted, in Unix time.
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = read(None).expect("/proc/self");
        assert!(me.resident_bytes > 0 && me.threads >= 1 && me.open_fds >= 3);
        assert!(me.max_fds >= me.open_fds);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(me.start_time_seconds > 0.0 && me.start_time_seconds <= now + 1.0);
        assert_eq!(read(Some(u32::MAX)), None);
    }
}
