//! `ClusterName`: `ckad-` and a short id. Validated once, it can go into argument vectors,
//! Docker names and file paths without quoting.

use std::fmt;

const PREFIX: &str = "ckad-";
const MAX_LEN: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0:?} is not a cluster name: `ckad-` then lowercase letters, digits and dashes, at most 40 characters"
)]
pub struct InvalidClusterName(pub String);

/// For command-line arguments (`ckad-clusters delete NAME`).
impl std::str::FromStr for ClusterName {
    type Err = InvalidClusterName;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::parse(name)
    }
}

impl ClusterName {
    /// A fresh name: `ckad-` and ten hex digits of a random UUID.
    pub fn generate() -> Self {
        Self(format!(
            "{PREFIX}{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        ))
    }

    pub fn parse(name: &str) -> Result<Self, InvalidClusterName> {
        let id = name.strip_prefix(PREFIX).unwrap_or_default();
        let valid = name.len() <= MAX_LEN
            && !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !id.starts_with('-')
            && !id.ends_with('-');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidClusterName(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid_and_distinct() {
        let (a, b) = (ClusterName::generate(), ClusterName::generate());
        assert_ne!(a, b);
        assert_eq!(ClusterName::parse(a.as_str()), Ok(a.clone()));
        assert_eq!(a.as_str().len(), 15);
    }

    #[test]
    fn only_safe_names_parse() {
        for good in ["ckad-a1b2c3", "ckad-abc-123", &format!("ckad-{}", "a".repeat(35))] {
            assert!(ClusterName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ckad-",
            "kind-a1b2c3",
            "ckad-A1B2",
            "ckad-a1;rm -rf /",
            "ckad-$(id)",
            "ckad-../../etc",
            "ckad-a b",
            "ckad--a",
            "ckad-a-",
            &format!("ckad-{}", "a".repeat(36)),
        ] {
            assert_eq!(
                ClusterName::parse(bad),
                Err(InvalidClusterName(bad.to_owned())),
                "{bad}"
            );
        }
    }
}
