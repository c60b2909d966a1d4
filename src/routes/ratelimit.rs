//! Request rate limits per client (or per user): a token bucket per key (governor's GCRA), in
//! memory. The client is the socket's address unless `TRUSTED_PROXIES` says how many proxies
//! stand in front, in which case it is read that many hops from the right of `X-Forwarded-For`;
//! a header the client wrote itself is never believed. An IPv6 client is its /64 (one host holds them all);
//! an IPv4 address mapped into IPv6 is the IPv4 address. A signed-in caller is their account.
//!
//! Several replicas keep their own buckets: a limit holds on each replica a client reaches, so
//! behind a load balancer that spreads its requests a client may get up to the limit times the
//! replicas (operators set `RATE_LIMIT_*` to each replica's share). Shared buckets would cost a
//! database round trip on every request to blunt floods a little more exactly; the limits that
//! must be exact (starts an hour, sign-in code attempts) are counted in the database and hold
//! across replicas.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{clock::Clock as _, DefaultKeyedRateLimiter, Quota};

use super::{error::ApiError, extract::CurrentUser};
use crate::auth::Auth;

/// At most `limit` requests per `period` for each key, in bursts of up to `limit` (governor's
/// GCRA, one state per key).
#[derive(Clone)]
pub struct RateLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    /// Checks since the keys were last pruned.
    checks: Arc<AtomicUsize>,
}

/// Every this many checks, keys whose buckets are full again are forgotten: memory stays bounded
/// by the clients of the last moments, not of all time.
const PRUNE_EVERY: usize = 1024;

impl RateLimiter {
    pub fn new(limit: u32, period: Duration) -> Self {
        let burst = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period / burst.get())
            .expect("a limit per a period longer than zero")
            .allow_burst(burst);
        Self {
            limiter: Arc::new(governor::RateLimiter::keyed(quota)),
            checks: Arc::default(),
        }
    }

    /// Admits a request for `key`, or says how long until one would be admitted.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// How many keys are remembered.
    #[cfg(test)]
    fn keys(&self) -> usize {
        self.limiter.len()
    }
}

/// How often one learner may check one task: grading reads their whole cluster.
pub const CHECK_GAP: Duration = Duration::from_secs(5);

/// One Check per learner and task every [`CHECK_GAP`].
#[derive(Clone)]
pub struct CheckThrottle(RateLimiter);

impl Default for CheckThrottle {
    fn default() -> Self {
        Self(RateLimiter::new(1, CHECK_GAP))
    }
}

impl CheckThrottle {
    /// Admits a Check of `task` by `user_id`, or says when the next one will be.
    pub fn admit(&self, user_id: &str, task: &str) -> Result<(), ApiError> {
        self.0.check(&format!("{user_id} {task}")).map_err(|wait| {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("you checked this task a moment ago: check it again in {seconds} s"),
            )
        })
    }
}

/// The client's address as this deployment should believe it.
pub fn client_address(socket: SocketAddr, headers: &HeaderMap, trusted_proxies: usize) -> IpAddr {
    if trusted_proxies == 0 {
        return socket.ip();
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    // Our proxies appended the last `trusted_proxies` entries; the one they saw is the client.
    hops.len()
        .checked_sub(trusted_proxies)
        .map_or(socket.ip(), |i| hops[i])
}

/// The bucket of a client address: an IPv6 address's /64, an IPv4 address as itself (mapped
/// into IPv6 or not).
pub fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => ipnet::Ipv6Net::new(v6, 64)
                .expect("64 is a valid prefix")
                .trunc()
                .to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// A limit applied by middleware to the paths under `scope`, keyed by the signed-in account when
/// the request proves one (`accounts`), else by client address.
#[derive(Clone)]
pub struct ClientLimit {
    pub scope: &'static str,
    pub limiter: RateLimiter,
    pub trusted_proxies: usize,
    pub accounts: Option<Auth>,
}

pub async fn limit_clients(
    State(limit): State<ClientLimit>,
    ConnectInfo(socket): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if !request.uri().path().starts_with(limit.scope) {
        return next.run(request).await;
    }
    let account = limit
        .accounts
        .as_ref()
        .and_then(|auth| CurrentUser::from_headers(auth, request.headers()).ok());
    let key = match account {
        Some(user) => format!("account {}", user.id),
        None => address_key(client_address(socket, request.headers(), limit.trusted_proxies)),
    };
    match limit.limiter.check(&key) {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many(wait),
    }
}

/// 429 with `Retry-After` in whole seconds.
pub fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests; try again in {seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_up_to_the_limit_passes_then_waits() {
        let limiter = RateLimiter::new(10, Duration::from_secs(60));
        for _ in 0..10 {
            limiter.check("a").unwrap();
        }
        let wait = limiter.check("a").unwrap_err();
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(6),
            "{wait:?}"
        );
        limiter.check("b").expect("other clients have their own bucket");
    }

    #[test]
    fn clients_whose_buckets_are_full_again_are_forgotten() {
        let limiter = RateLimiter::new(1, Duration::from_millis(1));
        for client in 0..PRUNE_EVERY - 1 {
            limiter.check(&client.to_string()).unwrap();
        }
        assert_eq!(limiter.keys(), PRUNE_EVERY - 1);
        std::thread::sleep(Duration::from_millis(5));
        limiter.check("one more").unwrap();
        assert!(limiter.keys() <= 1, "{} keys kept", limiter.keys());
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_ipv4_client_its_ipv4_address() {
        let key = |a: &str| address_key(a.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:203.0.113.7"), key("203.0.113.7"));
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let socket: SocketAddr = "10.0.0.9:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7"),
        );
        assert_eq!(
            client_address(socket, &headers, 0),
            socket.ip(),
            "no proxies: the header is ignored"
        );
        assert_eq!(
            client_address(socket, &headers, 1),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_address(socket, &headers, 2),
            "6.6.6.6".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_address(socket, &headers, 3),
            socket.ip(),
            "fewer hops than proxies"
        );
    }
}
