//! A session's API for a platform outside the host cluster (a developer's machine, the tests):
//! a listener on loopback whose every connection is one port-forward to the control-plane pod,
//! through the host's API (kube-rs over WebSocket). The serving certificate names 127.0.0.1, so
//! the platform's kubeconfig works through it with only its server changed. The same listener
//! reaches any pod's port (the tests reach each of the platform's replicas on its own).

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::{net::TcpListener, task::JoinSet};

use super::{APISERVER_PORT, CONTROL_PLANE};

/// Open while it lives; dropping it closes the listener and every forwarded connection.
pub struct ApiTunnel {
    addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl ApiTunnel {
    /// Listens on loopback `port` (0: any free one) for the control plane of `namespace`.
    pub async fn open(host: kube::Client, namespace: &str, port: u16) -> std::io::Result<Self> {
        let pods = Api::namespaced(host, namespace);
        Self::to_pod(pods, CONTROL_PLANE, APISERVER_PORT as u16, port).await
    }

    /// Listens on loopback `port` (0: any free one) for `pod`'s `target` port.
    pub async fn to_pod(pods: Api<Pod>, pod: &str, target: u16, port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let pod = pod.to_owned();
        let accept = tokio::spawn(async move {
            // Owned here, so that aborting this task ends every connection too.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => {
                            connections.spawn(forward(pods.clone(), pod.clone(), target, socket));
                        }
                        Err(error) => tracing::warn!(%error, "tunnel: accept failed"),
                    },
                    Some(_) = connections.join_next() => {}
                }
            }
        });
        Ok(Self { addr, accept })
    }

    /// The API's address through the tunnel, for a kubeconfig's `server`.
    pub fn server(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Where the tunnel listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ApiTunnel {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn forward(pods: Api<Pod>, pod: String, port: u16, mut socket: tokio::net::TcpStream) {
    let mut forwarder = match pods.portforward(&pod, &[port]).await {
        Ok(forwarder) => forwarder,
        Err(error) => {
            tracing::debug!(%error, "tunnel: port-forward refused");
            return;
        }
    };
    let Some(mut upstream) = forwarder.take_stream(port) else {
        return;
    };
    if let Err(error) = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await {
        tracing::debug!(%error, "tunnel: connection ended");
    }
    drop(upstream);
    let _ = forwarder.join().await;
}
