//! CPU time of a process from `/proc/<pid>/stat` (user + system), so a bench can report CPU per operation, which
//! a shared, noisy machine changes far less than it changes wall-clock rates.

use std::time::Duration;

/// CPU time `pid` has used (this process with `None`), user and system together; `None` where `/proc` cannot say
/// (not Linux, process gone).
pub fn process_cpu(pid: Option<u32>) -> Option<Duration> {
    process_times(pid).map(|t| t.user + t.system)
}

/// A process's CPU time, split by where it ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    /// In the process itself.
    pub user: Duration,
    /// In the kernel on its behalf: its syscalls, and on loopback the receiving side's TCP work it triggers.
    pub system: Duration,
}

impl std::ops::Add for Times {
    type Output = Times;
    fn add(self, other: Times) -> Times {
        Times {
            user: self.user + other.user,
            system: self.system + other.system,
        }
    }
}

/// [`process_cpu`], split into user and system time.
pub fn process_times(pid: Option<u32>) -> Option<Times> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    let (utime, stime) = cpu_ticks(&stat)?;
    let per_second = rustix::param::clock_ticks_per_second();
    if per_second == 0 {
        return None;
    }
    let time = |ticks: u64| Duration::from_micros(ticks.saturating_mul(1_000_000) / per_second);
    Some(Times {
        user: time(utime),
        system: time(stime),
    })
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces, so fields are counted after its closing parenthesis.
fn cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_ticks_past_a_name_with_spaces() {
        let stat =
            "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some((250, 50)));
        assert_eq!(cpu_ticks("garbage"), None);
        assert!(
            process_cpu(None).is_some(),
            "this process has a /proc entry"
        );
    }

    #[test]
    fn per_operation_splits_the_servers_time_and_sums_its_nodes() {
        let ms = Duration::from_millis;
        let at = |user, system, bench| CpuSample {
            server: Some(Times {
                user: ms(user),
                system: ms(system),
            }),
            bench: Some(ms(bench)),
        };
        let report = at(100, 50, 10).per_operation(&at(130, 110, 30), 1_000, "delivery");
        assert_eq!(report["server_cpu_us_per_delivery"], 90.0);
        assert_eq!(report["server_system_us_per_delivery"], 60.0);
        assert_eq!(report["bench_cpu_us_per_delivery"], 20.0);
        let unknown = CpuSample {
            server: None,
            bench: None,
        };
        let report = unknown.per_operation(&unknown, 1_000, "delivery");
        assert!(report["server_system_us_per_delivery"].is_null());
    }
}

/// CPU time of the server (when its pid was given) and of the bench, at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    server: Option<Times>,
    bench: Option<Duration>,
}

impl CpuSample {
    /// Reads both now; the server's is the sum over `server_pids` (the nodes of a cluster), `None` without any.
    /// A server pid `/proc` cannot read is the caller's mistake.
    pub fn take(server_pids: &[u32]) -> Result<CpuSample, crate::error::CliError> {
        let mut server = None;
        for &pid in server_pids {
            let cpu = process_times(Some(pid)).ok_or_else(|| {
                crate::error::CliError::Usage(format!(
                    "--server-pid {pid}: no such process, or /proc cannot be read"
                ))
            })?;
            server = Some(server.unwrap_or_default() + cpu);
        }
        Ok(CpuSample {
            server,
            bench: process_cpu(None),
        })
    }

    /// Microseconds of CPU per operation between `self` and `later`, for the server and for the bench (`null` where
    /// unknown), under `server_cpu_us_per_<unit>` and `bench_cpu_us_per_<unit>`; the server's kernel share of it
    /// under `server_system_us_per_<unit>`.
    pub fn per_operation(
        &self,
        later: &CpuSample,
        operations: u64,
        unit: &str,
    ) -> serde_json::Value {
        let per = |before: Option<Duration>, after: Option<Duration>| match (before, after) {
            (Some(before), Some(after)) if operations > 0 => {
                Some(after.saturating_sub(before).as_secs_f64() * 1e6 / operations as f64)
            }
            _ => None,
        };
        let total = |t: Option<Times>| t.map(|t| t.user + t.system);
        let system = |t: Option<Times>| t.map(|t| t.system);
        serde_json::json!({
            format!("server_cpu_us_per_{unit}"): per(total(self.server), total(later.server)),
            format!("server_system_us_per_{unit}"): per(system(self.server), system(later.server)),
            format!("bench_cpu_us_per_{unit}"): per(self.bench, later.bench),
        })
    }
}
