//! iocrun's own memory at rest: the supervisor idles beside the IOC for months, so what its
//! start steps used (the renderer's heap, the code of render, expand and PVI) should not stay
//! resident.
//!
//! * [`one_arena`], before any thread starts: glibc gives every thread that allocates its own
//!   malloc arena (132 KiB reserved, a few pages touched each); iocrun's threads move a few
//!   bytes at a time, so they share one.
//! * [`settle`], once the IOC runs: free heap pages go back to the system (`malloc_trim`), and
//!   the clean read-only pages of iocrun's own executable are unmapped (`MADV_DONTNEED`) and
//!   marked for random access (`MADV_RANDOM`, no fault-around), so only the code idle
//!   supervision touches comes back, one page at a time, from the page cache. Pages a
//!   mapping has copied (relocated data) are never touched: a mapping holding any anonymous
//!   page is left alone.

/// Limit malloc to one arena; call before any thread exists.
pub fn one_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Give back start-up memory (see the module documentation). Cheap: one read of
/// `/proc/self/smaps`.
pub fn settle() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory
    unsafe {
        libc::malloc_trim(0);
    }
    let (Ok(exe), Ok(smaps)) = (
        std::fs::read_link("/proc/self/exe"),
        std::fs::read_to_string("/proc/self/smaps"),
    ) else {
        return;
    };
    let exe = exe.to_string_lossy();
    for (start, end) in clean_read_only(&smaps, &exe) {
        let (addr, len) = (start as *mut libc::c_void, end - start);
        // SAFETY: the range is a private, read-only, unmodified mapping of our executable:
        // dropping its pages only makes the next access fault them in again from the file
        unsafe {
            libc::madvise(addr, len, libc::MADV_RANDOM);
            libc::madvise(addr, len, libc::MADV_DONTNEED);
        }
    }
}

/// The address ranges in `smaps` that map `exe` read-only and hold no anonymous (copied)
/// page.
fn clean_read_only(smaps: &str, exe: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if let Some((a, b)) = first.split_once('-') {
            // a mapping header: `start-end perms offset dev inode path`
            let range = usize::from_str_radix(a, 16)
                .ok()
                .zip(usize::from_str_radix(b, 16).ok());
            let perms = words.next().unwrap_or_default();
            let path = words.nth(3).unwrap_or_default();
            let wanted = path == exe && perms.starts_with('r') && !perms.contains('w');
            current = range.filter(|_| wanted && perms.ends_with('p'));
        } else if first == "Anonymous:" {
            let anon = words.next().and_then(|kb| kb.parse::<u64>().ok());
            if let (Some(range), Some(0)) = (current.take(), anon) {
                out.push(range);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
7f0000000000-7f0000010000 r--p 00000000 08:01 42 /usr/bin/iocrun
Rss:                  40 kB
Anonymous:             0 kB
7f0000010000-7f0000020000 r-xp 00010000 08:01 42 /usr/bin/iocrun
Anonymous:             0 kB
7f0000020000-7f0000030000 r--p 00020000 08:01 42 /usr/bin/iocrun
Anonymous:            64 kB
7f0000030000-7f0000031000 rw-p 00030000 08:01 42 /usr/bin/iocrun
Anonymous:             4 kB
7f0000040000-7f0000050000 r-xp 00000000 08:01 43 /usr/lib/libc.so.6
Anonymous:             0 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
Anonymous:            12 kB
";

    #[test]
    fn only_clean_read_only_mappings_of_the_executable() {
        assert_eq!(
            clean_read_only(SMAPS, "/usr/bin/iocrun"),
            vec![
                (0x7f00_0000_0000, 0x7f00_0001_0000),
                (0x7f00_0001_0000, 0x7f00_0002_0000)
            ]
        );
    }

    #[test]
    fn settling_keeps_the_process_working() {
        one_arena();
        settle();
        // code and constants come back from the file on use
        let v: Vec<String> = (0..1000).map(|i| format!("{i}")).collect();
        assert_eq!(v[999], "999");
        assert_eq!(clean_read_only(SMAPS, "/elsewhere"), Vec::new());
    }
}
