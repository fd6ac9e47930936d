//! Platforms (`linux/amd64`, `linux/arm/v7`), parsed and normalised as containerd's
//! `platforms.Parse` does, so `--platform`, `FROM --platform` and the predefined
//! `TARGETPLATFORM`/`BUILDPLATFORM` args agree with BuildKit's.

use std::fmt;

/// An operating system, CPU architecture and optional variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.to_string(),
        }
    }

    /// The platform distill runs on, as a Linux platform (containers are Linux here).
    pub fn host() -> Platform {
        let (architecture, variant) = normalize_architecture(std::env::consts::ARCH, "");
        Platform::new("linux", &architecture, &variant)
    }

    /// Parses `os[/arch[/variant]]`, or a lone architecture or OS, filling the rest from the
    /// host as containerd does. The error says what was expected.
    pub fn parse(text: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = text.split('/').collect();
        for part in &parts {
            if part.is_empty()
                || !part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "{text:?}: invalid platform: expected os/arch[/variant], such as linux/amd64"
                ));
            }
        }
        let host = Platform::host();
        let platform = match parts.as_slice() {
            [single] => {
                let lower = single.to_lowercase();
                if is_known_os(&lower) {
                    let os = normalize_os(&lower);
                    Platform::new(&os, &host.architecture, &host.variant)
                } else if is_known_architecture(&lower) {
                    let (architecture, variant) = normalize_architecture(&lower, "");
                    Platform::new(&host.os, &architecture, &variant)
                } else {
                    return Err(format!(
                        "{text:?}: unknown operating system or architecture"
                    ));
                }
            }
            [os, architecture] => {
                let (architecture, variant) =
                    normalize_architecture(&architecture.to_lowercase(), "");
                Platform::new(&normalize_os(&os.to_lowercase()), &architecture, &variant)
            }
            [os, architecture, variant] => {
                let (architecture, variant) =
                    normalize_architecture(&architecture.to_lowercase(), &variant.to_lowercase());
                Platform::new(&normalize_os(&os.to_lowercase()), &architecture, &variant)
            }
            _ => {
                return Err(format!(
                    "{text:?}: invalid platform: expected os/arch[/variant], such as linux/amd64"
                ))
            }
        };
        Ok(platform)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

fn is_known_os(os: &str) -> bool {
    matches!(
        os,
        "aix"
            | "android"
            | "darwin"
            | "macos"
            | "dragonfly"
            | "freebsd"
            | "hurd"
            | "illumos"
            | "ios"
            | "js"
            | "linux"
            | "nacl"
            | "netbsd"
            | "openbsd"
            | "plan9"
            | "solaris"
            | "windows"
            | "zos"
    )
}

fn is_known_architecture(architecture: &str) -> bool {
    matches!(
        architecture,
        "386"
            | "i386"
            | "amd64"
            | "x86_64"
            | "x86-64"
            | "amd64p32"
            | "arm"
            | "armhf"
            | "armel"
            | "armbe"
            | "arm64"
            | "aarch64"
            | "arm64be"
            | "loong64"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "mips64p32"
            | "mips64p32le"
            | "ppc"
            | "ppc64"
            | "ppc64le"
            | "riscv"
            | "riscv64"
            | "s390"
            | "s390x"
            | "sparc"
            | "sparc64"
            | "wasm"
    )
}

fn normalize_os(os: &str) -> String {
    match os {
        "macos" => "darwin".to_string(),
        _ => os.to_string(),
    }
}

/// containerd's `normalizeArch`: canonical architecture names and variants.
fn normalize_architecture(architecture: &str, variant: &str) -> (String, String) {
    let (architecture, variant) = match (architecture, variant) {
        ("i386", _) => ("386", ""),
        ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64", ""),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v),
        ("aarch64" | "arm64", "8" | "v8") => ("arm64", ""),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "" | "7") => ("arm", "v7"),
        ("arm", "5") => ("arm", "v5"),
        ("arm", "6") => ("arm", "v6"),
        ("arm", "8") => ("arm", "v8"),
        (a, v) => (a, v),
    };
    (architecture.to_string(), variant.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_containerd() {
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/aarch64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/arm").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("Linux/ARM64").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(Platform::parse("arm64").unwrap().os, "linux");
        assert_eq!(Platform::parse("linux").unwrap(), Platform::host());
    }

    #[test]
    fn rejects_nonsense() {
        assert!(Platform::parse("").is_err());
        assert!(Platform::parse("linux//amd64").is_err());
        assert!(Platform::parse("foo").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        assert!(Platform::parse("linux/amd 64").is_err());
    }
}
