//! Facts about the machine the node reports: capacity, addresses and system information.

use std::{collections::BTreeMap, net::IpAddr, path::Path};

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Resources of the machine, as upstream's cAdvisor-based capacity reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    pub cpus: u64,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
}

impl Capacity {
    /// The machine's capacity; ephemeral storage is the filesystem holding `root_dir`.
    pub fn detect(root_dir: &Path) -> Capacity {
        Capacity {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
            memory_bytes: meminfo_kib("MemTotal").unwrap_or(0) * 1024,
            ephemeral_storage_bytes: filesystem(root_dir).map(|f| f.capacity).unwrap_or(0),
        }
    }

    /// `status.capacity`.
    pub fn quantities(&self, max_pods: u32) -> BTreeMap<String, Quantity> {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(self.cpus.to_string())),
            (
                "memory".to_string(),
                Quantity(format!("{}Ki", self.memory_bytes / 1024)),
            ),
            (
                "ephemeral-storage".to_string(),
                Quantity(format!("{}Ki", self.ephemeral_storage_bytes / 1024)),
            ),
            ("pods".to_string(), Quantity(max_pods.to_string())),
        ])
    }

    /// `status.allocatable`: capacity less the default hard eviction thresholds
    /// (memory.available 100Mi, nodefs.available 10%), as upstream computes it with no reservations.
    pub fn allocatable(&self, max_pods: u32) -> BTreeMap<String, Quantity> {
        let memory = self.memory_bytes.saturating_sub(100 * 1024 * 1024);
        let storage = self.ephemeral_storage_bytes - self.ephemeral_storage_bytes / 10;
        BTreeMap::from([
            ("cpu".to_string(), Quantity(self.cpus.to_string())),
            (
                "memory".to_string(),
                Quantity(format!("{}Ki", memory / 1024)),
            ),
            (
                "ephemeral-storage".to_string(),
                Quantity(storage.to_string()),
            ),
            ("pods".to_string(), Quantity(max_pods.to_string())),
        ])
    }
}

/// A value from /proc/meminfo, in KiB.
pub fn meminfo_kib(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines().find_map(|line| {
        let (k, rest) = line.split_once(':')?;
        (k == key).then(|| rest.trim().trim_end_matches("kB").trim().parse().ok())?
    })
}

/// Size and free space of a filesystem.
#[derive(Debug, Clone, Copy)]
pub struct FsStats {
    pub capacity: u64,
    pub available: u64,
}

/// statvfs(2) of the filesystem holding `path`.
pub fn filesystem(path: &Path) -> Option<FsStats> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs buffer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled the buffer.
    let st = unsafe { st.assume_init() };
    let frsize = st.f_frsize;
    Some(FsStats {
        capacity: st.f_blocks * frsize,
        available: st.f_bavail * frsize,
    })
}

/// The node's primary address: the source address of the default route, else loopback.
pub fn default_address() -> IpAddr {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.255:9")?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// The host name, lower-cased as upstream's node names are.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_else(|_| "localhost".into())
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Facts for `status.nodeInfo` that do not come from the runtime.
#[derive(Debug, Clone)]
pub struct SystemInfo {
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub architecture: String,
}

impl SystemInfo {
    pub fn detect() -> SystemInfo {
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("PRETTY_NAME=")
                        .map(|v| v.trim_matches('"').to_string())
                })
            })
            .unwrap_or_else(|| "Linux".into());
        SystemInfo {
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            os_image,
            machine_id: read_trimmed("/etc/machine-id"),
            system_uuid: read_trimmed("/sys/class/dmi/id/product_uuid"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            architecture: go_arch().into(),
        }
    }
}

/// The architecture in Go's (and so Kubernetes') spelling.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocatable_subtracts_eviction_thresholds() {
        let c = Capacity {
            cpus: 2,
            memory_bytes: 1024 * 1024 * 1024,
            ephemeral_storage_bytes: 1000,
        };
        let a = c.allocatable(110);
        assert_eq!(a["memory"].0, "946176Ki");
        assert_eq!(a["ephemeral-storage"].0, "900");
        assert_eq!(a["pods"].0, "110");
        assert_eq!(c.quantities(110)["memory"].0, "1048576Ki");
    }

    #[test]
    fn detects_this_machine() {
        let c = Capacity::detect(Path::new("/"));
        assert!(c.cpus >= 1 && c.memory_bytes > 0 && c.ephemeral_storage_bytes > 0);
    }
}
