//! The host ports a session's cluster publishes, and the ranges they are taken from.

use std::ops::RangeInclusive;

/// The host ports a session's cluster publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSet {
    pub api: u16,
    pub ingress: u16,
    pub ingress_https: u16,
}

/// Where each kind of port is taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRanges {
    pub api: RangeInclusive<u16>,
    pub ingress: RangeInclusive<u16>,
    pub ingress_https: RangeInclusive<u16>,
}

impl Default for PortRanges {
    /// The first seed's pools.
    fn default() -> Self {
        Self {
            api: 30000..=39999,
            ingress: 40000..=44999,
            ingress_https: 45000..=49999,
        }
    }
}
