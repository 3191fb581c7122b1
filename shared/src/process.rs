//! Facts about a process from Linux's `/proc/{pid}/status`: its resident memory now (`VmRSS`) and
//! at its peak (`VmHWM`), as ws-local's REPORT lines and the benchmarks give them.

/// The `field` line of `/proc/{pid}/status` (`/proc/self/status` without a pid), in KiB; `None`
/// when the process or the line is not there (not Linux, or the process has exited).
pub fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = pid.map_or_else(|| "/proc/self/status".to_owned(), |pid| format!("/proc/{pid}/status"));
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// [`status_kib`] in whole MiB, rounded up (as Lambda's REPORT gives `Max Memory Used`).
pub fn status_mib(pid: Option<u32>, field: &str) -> Option<u64> {
    status_kib(pid, field).map(|kib| kib.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_size_and_a_peak_at_least_as_large() {
        let rss = status_kib(None, "VmRSS").expect("Linux");
        let peak = status_kib(Some(std::process::id()), "VmHWM").expect("Linux");
        assert!(rss > 0 && peak >= rss, "{rss} {peak}");
        assert_eq!(status_mib(None, "VmHWM").map(|mib| mib >= peak / 1024), Some(true));
        assert_eq!(status_kib(None, "NoSuchField"), None);
        assert_eq!(status_kib(None, "VmRS"), None, "a prefix of a field is not the field");
    }
}
