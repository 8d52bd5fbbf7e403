//! Pod volumes on the node: emptyDir (disk, or tmpfs for medium Memory), hostPath, configMap,
//! secret, downwardAPI and projected. Content volumes are written atomically (a timestamped
//! directory swapped in through the `..data` symlink, as upstream's AtomicWriter) and rewritten
//! on every sync, so updates of configMaps and secrets reach running containers.

use std::{
    collections::{BTreeMap, HashMap},
    os::unix::fs::{symlink, PermissionsExt},
    path::{Path, PathBuf},
};

use k8s_openapi::api::core::v1::{KeyToPath, Volume};

use crate::{
    envvars::{self, EnvError, PodFacts},
    token::TokenManager,
};

/// Why a volume could not be set up; reported as the container's CreateContainerConfigError.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume}: {source}")]
    Io {
        volume: String,
        source: std::io::Error,
    },
    #[error("volume {volume}: {source}")]
    Source { volume: String, source: EnvError },
    #[error("volume {volume}: configmap {name:?} not found")]
    ConfigMapNotFound { volume: String, name: String },
    #[error("volume {volume}: secret {name:?} not found")]
    SecretNotFound { volume: String, name: String },
    #[error("volume {volume}: {source}")]
    Token {
        volume: String,
        source: crate::token::TokenError,
    },
    #[error("volume {volume}: unsupported volume type")]
    Unsupported { volume: String },
    #[error("volume {volume}: mounting tmpfs: {source}")]
    Mount {
        volume: String,
        source: std::io::Error,
    },
}

/// The directory of a pod's files under the kubelet root.
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}

/// Sets up every volume of `pod`; returns the host path of each by volume name.
pub async fn setup(
    root: &Path,
    client: Option<&kube::Client>,
    tokens: &TokenManager,
    facts: &PodFacts<'_>,
) -> Result<HashMap<String, PathBuf>, VolumeError> {
    let pod = facts.pod;
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let volumes_dir = pod_dir(root, &uid).join("volumes");
    let mut paths = HashMap::new();
    for volume in pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
    {
        let path = setup_one(&volumes_dir, client, tokens, facts, volume).await?;
        paths.insert(volume.name.clone(), path);
    }
    Ok(paths)
}

async fn setup_one(
    dir: &Path,
    client: Option<&kube::Client>,
    tokens: &TokenManager,
    facts: &PodFacts<'_>,
    volume: &Volume,
) -> Result<PathBuf, VolumeError> {
    let name = volume.name.clone();
    let io = |source| VolumeError::Io {
        volume: name.clone(),
        source,
    };
    let namespace = facts.namespace();
    if let Some(empty) = &volume.empty_dir {
        let path = dir.join("kubernetes.io~empty-dir").join(&name);
        std::fs::create_dir_all(&path).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).map_err(io)?;
        if empty.medium.as_deref() == Some("Memory") && !is_mount_point(&path) {
            let size = empty.size_limit.as_ref().and_then(crate::quantity::bytes);
            mount_tmpfs(&path, size).map_err(|source| VolumeError::Mount {
                volume: name.clone(),
                source,
            })?;
        }
        return Ok(path);
    }
    if let Some(host) = &volume.host_path {
        let path = PathBuf::from(&host.path);
        match host.type_.as_deref() {
            Some("DirectoryOrCreate") => std::fs::create_dir_all(&path).map_err(io)?,
            Some("FileOrCreate") if !path.exists() => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                std::fs::write(&path, b"").map_err(io)?;
            }
            _ => {}
        }
        return Ok(path);
    }
    let source = source_error(&name);
    let mut files: BTreeMap<String, (Vec<u8>, u32)> = BTreeMap::new();
    let kind;
    if let Some(cm) = &volume.config_map {
        kind = "kubernetes.io~configmap";
        let mode = cm.default_mode.unwrap_or(0o644) as u32;
        let data = config_map_data(client, &namespace, &name, &cm.name, cm.optional, true).await?;
        if let Some(data) = data {
            project(&mut files, &data, cm.items.as_deref(), mode);
        }
    } else if let Some(s) = &volume.secret {
        kind = "kubernetes.io~secret";
        let mode = s.default_mode.unwrap_or(0o644) as u32;
        let secret_name = s.secret_name.clone().unwrap_or_default();
        if let Some(data) = secret_data(client, &namespace, &name, &secret_name, s.optional).await?
        {
            project(&mut files, &data, s.items.as_deref(), mode);
        }
    } else if let Some(d) = &volume.downward_api {
        kind = "kubernetes.io~downward-api";
        let mode = d.default_mode.unwrap_or(0o644) as u32;
        project_downward(&mut files, facts, d.items.as_deref(), mode).map_err(source)?;
    } else if let Some(p) = &volume.projected {
        kind = "kubernetes.io~projected";
        let mode = p.default_mode.unwrap_or(0o644) as u32;
        for src in p.sources.iter().flatten() {
            if let Some(cm) = &src.config_map {
                let data = config_map_data(client, &namespace, &name, &cm.name, cm.optional, false)
                    .await?;
                if let Some(data) = data {
                    project(&mut files, &data, cm.items.as_deref(), mode);
                }
            }
            if let Some(s) = &src.secret {
                if let Some(data) =
                    secret_data(client, &namespace, &name, &s.name, s.optional).await?
                {
                    project(&mut files, &data, s.items.as_deref(), mode);
                }
            }
            if let Some(d) = &src.downward_api {
                project_downward(&mut files, facts, d.items.as_deref(), mode).map_err(source)?;
            }
            if let Some(t) = &src.service_account_token {
                let audience = t.audience.as_deref().filter(|a| !a.is_empty());
                let token = tokens
                    .token(
                        client,
                        facts.pod,
                        audience,
                        t.expiration_seconds.unwrap_or(3600),
                    )
                    .await
                    .map_err(|source| VolumeError::Token {
                        volume: name.clone(),
                        source,
                    })?;
                files.insert(t.path.clone(), (token.into_bytes(), mode));
            }
            if src.cluster_trust_bundle.is_some() {
                return Err(VolumeError::Unsupported {
                    volume: name.clone(),
                });
            }
        }
    } else {
        return Err(VolumeError::Unsupported {
            volume: name.clone(),
        });
    }
    let path = dir.join(kind).join(&name);
    write_atomic(&path, &files).map_err(io)?;
    Ok(path)
}

/// Wraps an error resolving the source of `volume`.
fn source_error(volume: &str) -> impl Fn(EnvError) -> VolumeError + Copy + '_ {
    move |source| VolumeError::Source {
        volume: volume.to_string(),
        source,
    }
}

/// The data of configMap `cm` (with its binaryData when `binary`); `None` when it does not
/// exist and is optional.
async fn config_map_data(
    client: Option<&kube::Client>,
    namespace: &str,
    volume: &str,
    cm: &str,
    optional: Option<bool>,
    binary: bool,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, VolumeError> {
    let found = envvars::config_map(client, namespace, cm)
        .await
        .map_err(source_error(volume))?;
    match found {
        Some(obj) => {
            let mut data: BTreeMap<String, Vec<u8>> = obj
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            if binary {
                data.extend(
                    obj.binary_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0)),
                );
            }
            Ok(Some(data))
        }
        None if optional == Some(true) => Ok(None),
        None => Err(VolumeError::ConfigMapNotFound {
            volume: volume.to_string(),
            name: cm.to_string(),
        }),
    }
}

/// The data of secret `secret`; `None` when it does not exist and is optional.
async fn secret_data(
    client: Option<&kube::Client>,
    namespace: &str,
    volume: &str,
    secret: &str,
    optional: Option<bool>,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, VolumeError> {
    let found = envvars::secret(client, namespace, secret)
        .await
        .map_err(source_error(volume))?;
    match found {
        Some(obj) => Ok(Some(
            obj.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
        )),
        None if optional == Some(true) => Ok(None),
        None => Err(VolumeError::SecretNotFound {
            volume: volume.to_string(),
            name: secret.to_string(),
        }),
    }
}

/// Adds the downward API `items` to `files`, each with its own mode or `mode`.
fn project_downward(
    files: &mut BTreeMap<String, (Vec<u8>, u32)>,
    facts: &PodFacts<'_>,
    items: Option<&[k8s_openapi::api::core::v1::DownwardAPIVolumeFile]>,
    mode: u32,
) -> Result<(), EnvError> {
    for item in items.into_iter().flatten() {
        let value = downward_item(facts, item)?;
        files.insert(
            item.path.clone(),
            (
                value.into_bytes(),
                item.mode.map(|m| m as u32).unwrap_or(mode),
            ),
        );
    }
    Ok(())
}

fn downward_item(
    facts: &PodFacts<'_>,
    item: &k8s_openapi::api::core::v1::DownwardAPIVolumeFile,
) -> Result<String, EnvError> {
    if let Some(f) = &item.field_ref {
        return envvars::field_ref(facts, &f.field_path);
    }
    if let Some(r) = &item.resource_field_ref {
        let spec = facts.pod.spec.as_ref();
        let container = spec
            .and_then(|s| {
                s.containers
                    .iter()
                    .find(|c| Some(c.name.as_str()) == r.container_name.as_deref())
            })
            .or_else(|| spec.and_then(|s| s.containers.first()))
            .cloned()
            .unwrap_or_default();
        return envvars::resource_ref(facts, &container, &r.resource, r.divisor.as_ref());
    }
    Ok(String::new())
}

/// Adds `data` to `files`, all keys or only the listed `items`.
fn project(
    files: &mut BTreeMap<String, (Vec<u8>, u32)>,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    mode: u32,
) {
    match items {
        Some(items) => {
            for item in items {
                if let Some(value) = data.get(&item.key) {
                    files.insert(
                        item.path.clone(),
                        (value.clone(), item.mode.map(|m| m as u32).unwrap_or(mode)),
                    );
                }
            }
        }
        None => {
            for (k, v) in data {
                files.insert(k.clone(), (v.clone(), mode));
            }
        }
    }
}

/// Writes `files` under `dir` through the `..data` symlink, unless they are already current.
fn write_atomic(dir: &Path, files: &BTreeMap<String, (Vec<u8>, u32)>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let data_link = dir.join("..data");
    let current = std::fs::read_link(&data_link).ok();
    if let Some(current) = &current {
        let unchanged = files.iter().all(|(path, (content, _))| {
            std::fs::read(dir.join(current).join(path)).is_ok_and(|c| c == *content)
        }) && count_files(&dir.join(current)) == files.len();
        if unchanged {
            return Ok(());
        }
    }
    let stamp = format!("..{}", chrono::Utc::now().format("%Y_%m_%d_%H_%M_%S%.9f"));
    let staged = dir.join(&stamp);
    std::fs::create_dir_all(&staged)?;
    for (path, (content, mode)) in files {
        let target = staged.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))?;
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    symlink(&stamp, &tmp_link)?;
    std::fs::rename(&tmp_link, &data_link)?;
    // Top-level names point into ..data, so they follow each swap.
    let mut tops: Vec<String> = files
        .keys()
        .map(|p| p.split('/').next().unwrap_or(p).to_string())
        .collect();
    tops.dedup();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(top), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") {
            if name != "..data" && name != stamp && entry.path().is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            }
        } else if !tops.contains(&name) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        count_files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn is_mount_point(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.display().to_string();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
}

fn mount_tmpfs(path: &Path, size: Option<i64>) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let target = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let data = std::ffi::CString::new(match size {
        Some(bytes) if bytes > 0 => format!("size={bytes}"),
        _ => String::new(),
    })?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Removes a pod's directory, unmounting tmpfs volumes first.
pub fn teardown(root: &Path, uid: &str) -> std::io::Result<()> {
    let dir = pod_dir(root, uid);
    let empty_dirs = dir.join("volumes").join("kubernetes.io~empty-dir");
    if let Ok(entries) = std::fs::read_dir(&empty_dirs) {
        for e in entries.flatten() {
            if is_mount_point(&e.path()) {
                use std::os::unix::ffi::OsStrExt;
                let target = std::ffi::CString::new(e.path().as_os_str().as_bytes())?;
                // SAFETY: `target` is a valid NUL-terminated path.
                unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_swap_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vol");
        let mut files = BTreeMap::from([("a".to_string(), (b"one".to_vec(), 0o644))]);
        write_atomic(&path, &files).unwrap();
        assert_eq!(std::fs::read(path.join("a")).unwrap(), b"one");
        files.insert("a".into(), (b"two".to_vec(), 0o644));
        files.insert("b".into(), (b"bee".to_vec(), 0o600));
        write_atomic(&path, &files).unwrap();
        assert_eq!(std::fs::read(path.join("a")).unwrap(), b"two");
        assert_eq!(std::fs::read(path.join("b")).unwrap(), b"bee");
        files.remove("a");
        write_atomic(&path, &files).unwrap();
        assert!(!path.join("a").exists());
        let stamps = std::fs::read_dir(&path)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("..2"))
            .count();
        assert_eq!(stamps, 1);
    }
}
