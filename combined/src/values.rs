//! The values a container request is made of (`--net`, `--volume`, `--hostname`, `--env`, the id maps,
//! where the root comes from), each checked as it is parsed: every check here runs in the launcher, on
//! the host, before anything exists, so bad input costs nothing and leaves nothing behind.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use nskit::idmap::IdMap;
use uts_demo::Name;

/// What the container gets for networking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NetMode {
    /// A new network namespace with no interface up, not even loopback.
    None,
    /// A new network namespace with only `lo`, up.
    Loopback,
    /// `lo`, plus a veth pair to the host with addresses from `--subnet` (root only).
    Veth,
    /// The host's own network namespace (an OCI config without a network namespace; not offered
    /// on the command line).
    #[value(skip)]
    Host,
    /// Another container's network namespace, joined by path (an OCI config's; a Kubernetes pod's
    /// containers share their sandbox's): set up by whoever made it.
    #[value(skip)]
    Joined,
}

/// Where the root filesystem comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rootfs {
    /// The embedded default: the host's /usr, /bin, /sbin and /lib* read-only on a fresh tmpfs root.
    HostView,
    /// A directory on the host (`--rootfs`), used and written in place.
    Dir(PathBuf),
    /// An unpacked image (`--image`), read-only under a throwaway writable layer (`layer.rs`).
    Image(PathBuf),
}

/// `--volume SRC:DST[:ro]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

impl FromStr for Volume {
    type Err = String;

    fn from_str(s: &str) -> Result<Volume, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [source, target] => (*source, *target, false),
            [source, target, "ro"] => (*source, *target, true),
            [source, target, "rw"] => (*source, *target, false),
            _ => return Err(format!("invalid volume {s:?}: expected SRC:DST or SRC:DST:ro")),
        };
        if source.is_empty() || target.is_empty() {
            return Err(format!("invalid volume {s:?}: SRC and DST must not be empty"));
        }
        if !source.starts_with('/') {
            // Docker reads a relative source as the name of a managed volume; there are none here, and
            // guessing the directory it was meant to be relative to would hide a mistake.
            return Err(format!(
                "invalid volume {s:?}: the source must be an absolute path (for the current directory: \"$PWD\"/{source})"
            ));
        }
        let target = container_path(target).map_err(|why| format!("invalid volume {s:?}: {why}"))?;
        if let Some(kernel) = ["/proc", "/sys"].into_iter().find(|k| target.starts_with(k)) {
            // The container gets a fresh procfs and a read-only sysfs there: a volume under either
            // would be hidden by it, or would cover the masks that protect the kernel's files.
            return Err(format!(
                "invalid volume {s:?}: {kernel} is the kernel's own filesystem in the container; mount the volume elsewhere"
            ));
        }
        Ok(Volume {
            source: PathBuf::from(source),
            target,
            read_only,
        })
    }
}

/// Checks a path inside the container: absolute, no `..`, not `/` itself.
pub fn container_path(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!("{path} is not an absolute path"));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{path} contains '..'"));
    }
    if p.components()
        .all(|c| c == Component::RootDir || c == Component::CurDir)
    {
        return Err("the target cannot be / itself".into());
    }
    Ok(p.to_path_buf())
}

/// `--hostname`: a host name as RFC 1123 defines it (labels of letters, digits and hyphens, 1 to 63
/// characters each, no hyphen first or last, separated by dots), and short enough for the kernel
/// (64 bytes, uname(2)). The kernel takes any bytes; programs that read the name back do not.
pub fn hostname(value: &str) -> Result<Name, String> {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if value.is_empty() || !value.split('.').all(label_ok) {
        return Err(format!(
            "invalid hostname {value:?}: use letters, digits and hyphens, in dot-separated labels of 1 to 63 characters (RFC 1123)"
        ));
    }
    Name::parse("hostname", value).map_err(|e| e.to_string())
}

/// `--env KEY=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
}

impl FromStr for EnvVar {
    type Err = String;

    fn from_str(s: &str) -> Result<EnvVar, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("invalid environment variable {s:?}: expected KEY=VALUE"))?;
        if key.is_empty() || s.contains('\0') {
            return Err(format!(
                "invalid environment variable {s:?}: the key is empty or it contains a NUL byte"
            ));
        }
        Ok(EnvVar {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

impl fmt::Display for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Both id maps, from `--uid-map`/`--gid-map` or the rootless default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Maps {
    pub uid: IdMap,
    pub gid: IdMap,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse_and_refuse_escapes() {
        assert_eq!(
            "/data:/mnt/data:ro".parse(),
            Ok(Volume {
                source: "/data".into(),
                target: "/mnt/data".into(),
                read_only: true
            })
        );
        assert!("/data:/mnt".parse::<Volume>().is_ok_and(|v| !v.read_only));
        for bad in [
            "/data",
            "data:/mnt",
            "./data:/mnt",
            "/data:/proc/x",
            "/data:/sys",
            "/data:mnt",
            "/data:/a/../b",
            "/data:/",
            ":/x",
            "/a:/b:rx",
            "/a:/b:ro:x",
        ] {
            assert!(bad.parse::<Volume>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames_follow_rfc_1123() {
        for good in ["box", "a-b", "web1.example.com", "x", &"a".repeat(63)] {
            assert!(hostname(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a/b",
            "a\nb",
            "-a",
            "a-",
            "a..b",
            "a_b",
            "ä",
            &"a".repeat(64),
            &format!("{}.b", "a".repeat(63)),
        ] {
            let message = hostname(bad).unwrap_err();
            assert!(!message.contains('\n'), "one line, the value escaped: {message}");
        }
    }

    #[test]
    fn env_vars_parse() {
        assert_eq!(
            "A=b=c".parse(),
            Ok(EnvVar {
                key: "A".into(),
                value: "b=c".into()
            })
        );
        assert_eq!(
            "A=".parse(),
            Ok(EnvVar {
                key: "A".into(),
                value: String::new()
            })
        );
        assert!("A".parse::<EnvVar>().is_err());
        assert!("=x".parse::<EnvVar>().is_err());
    }
}
