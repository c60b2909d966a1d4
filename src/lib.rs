//! The CKAD practice platform's server: configuration, telemetry, the store, health and metrics,
//! and the Leptos site, assembled by [`startup`].

pub mod auth;
pub mod billing;
pub mod clusters;
pub mod configuration;
pub mod desk;
pub mod docker;
pub mod domain;
pub mod exams;
pub mod health;
pub mod mail;
pub mod metrics;
pub mod reconciler;
pub mod replays;
pub mod routes;
pub mod security;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod terminals;

pub use startup::{app, run, shutdown_signal};
pub use state::AppState;
