//! The integration tests, as one binary (one link instead of one per file): a module per area.
//! Each test starts what it needs (a platform, clusters, terminals, an SMTP or OIDC server) and
//! removes it afterwards.

mod common;

mod api;
mod auth;
mod billing;
mod clusters;
mod deploy;
mod exams;
mod fanout;
mod google;
mod kind;
mod kube_deploy;
mod kube_provider;
mod mail_api;
mod operations;
mod pool;
mod postgres;
mod process;
mod reconciler;
mod replay;
mod replicas;
mod security;
mod sessions;
mod task_behaviour;
mod task_proof;
mod tasks;
mod terminal;
