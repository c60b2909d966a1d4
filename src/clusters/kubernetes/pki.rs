//! The certificates of one session's control plane, made by the platform (kwokctl made them for
//! `lite`): a CA of the session's own, the API server's serving certificate naming every address
//! it is reached at, one client certificate per identity, and the key that signs service-account
//! tokens. The CA's key signs them and is then dropped: nothing can issue another identity for
//! the session afterwards, and no Secret holds a key that could.

use std::net::IpAddr;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use kube::config::{
    AuthInfo, Cluster as KubeconfigCluster, Context, Kubeconfig as KubeconfigFile, NamedAuthInfo,
    NamedCluster, NamedContext,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use secrecy::{ExposeSecret, SecretString};

use super::super::{ClusterError, Kubeconfig};

/// A session lasts hours; a warm pool may hold a control plane for some days before it.
const VALIDITY: time::Duration = time::Duration::days(30);
/// Clocks of the host cluster's nodes and of the platform may differ by this much.
const SKEW: time::Duration = time::Duration::hours(1);
/// The group the API server's RBAC lets do anything.
const MASTERS: &str = "system:masters";

/// A certificate and its key, both PEM. The key never prints.
pub struct KeyedCert {
    pub cert: String,
    pub key: SecretString,
}

/// Who holds a client certificate, and the groups RBAC sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The platform (grader, health, the reconciler).
    Platform,
    /// The learner's kubectl in the terminal: an administrator of their own cluster, as on
    /// `lite` and `kind`.
    Learner,
    /// kube-controller-manager, with its own role (kubeadm's way: a token per controller).
    ControllerManager,
    /// kube-scheduler, with its own role.
    Scheduler,
    /// kwok's controller: it writes nodes' and pods' status, so it is an administrator.
    Kwok,
}

impl Identity {
    pub const ALL: [Self; 5] = [
        Self::Platform,
        Self::Learner,
        Self::ControllerManager,
        Self::Scheduler,
        Self::Kwok,
    ];

    /// The certificate's common name: the user name RBAC sees.
    pub fn user(self) -> &'static str {
        match self {
            Self::Platform => "ckad-platform",
            Self::Learner => "ckad-learner",
            Self::ControllerManager => "system:kube-controller-manager",
            Self::Scheduler => "system:kube-scheduler",
            Self::Kwok => "kwok-controller",
        }
    }

    pub fn groups(self) -> &'static [&'static str] {
        match self {
            Self::Platform | Self::Learner | Self::Kwok => &[MASTERS],
            Self::ControllerManager | Self::Scheduler => &[],
        }
    }
}

/// Where the session's API server is reached: each becomes a name in its serving certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAddresses {
    pub ips: Vec<IpAddr>,
    pub dns_names: Vec<String>,
}

/// One session's PKI, in the PEM forms the control plane's flags and kubeconfigs take.
pub struct Pki {
    pub ca_cert: String,
    pub apiserver: KeyedCert,
    /// Signs service-account tokens (kube-apiserver) and is how they are checked (`public`).
    pub service_account_key: SecretString,
    pub service_account_public: String,
    clients: Vec<(Identity, KeyedCert)>,
}

impl Pki {
    /// A new CA and everything it signs; `api` names the API server's addresses.
    pub fn generate(api: &ApiAddresses) -> Result<Self, ClusterError> {
        let now = time::OffsetDateTime::now_utc();
        let validity = |params: &mut CertificateParams| {
            params.not_before = now - SKEW;
            params.not_after = now + VALIDITY;
        };

        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name = name("ckad-session-ca", &[]);
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut ca);
        let ca_cert = ca.self_signed(&ca_key)?.pem();
        let issuer = Issuer::new(ca, ca_key);

        let leaf = |common_name: &str, groups: &[&str], usage: ExtendedKeyUsagePurpose| {
            let mut params = CertificateParams::default();
            params.distinguished_name = name(common_name, groups);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            params.use_authority_key_identifier_extension = true;
            validity(&mut params);
            params
        };

        let mut serving = leaf("kube-apiserver", &[], ExtendedKeyUsagePurpose::ServerAuth);
        serving.subject_alt_names = api.ips.iter().copied().map(SanType::IpAddress).collect();
        for dns in &api.dns_names {
            serving
                .subject_alt_names
                .push(SanType::DnsName(dns.clone().try_into()?));
        }
        let apiserver = sign(&serving, &issuer)?;

        let clients = Identity::ALL
            .into_iter()
            .map(|identity| {
                let params = leaf(
                    identity.user(),
                    identity.groups(),
                    ExtendedKeyUsagePurpose::ClientAuth,
                );
                Ok((identity, sign(&params, &issuer)?))
            })
            .collect::<Result<_, ClusterError>>()?;

        let service_account = KeyPair::generate()?;
        Ok(Self {
            ca_cert,
            apiserver,
            service_account_key: service_account.serialize_pem().into(),
            service_account_public: service_account.public_key_pem(),
            clients,
        })
    }

    pub fn client(&self, identity: Identity) -> &KeyedCert {
        self.clients
            .iter()
            .find_map(|(who, cert)| (*who == identity).then_some(cert))
            .expect("generate issues every identity")
    }

    /// A kubeconfig for `identity` that reaches the API at `server` and trusts only the
    /// session's CA.
    pub fn kubeconfig(&self, identity: Identity, server: &str) -> Result<Kubeconfig, ClusterError> {
        let client = self.client(identity);
        let name = "ckad";
        let file = KubeconfigFile {
            api_version: Some("v1".into()),
            kind: Some("Config".into()),
            clusters: vec![NamedCluster {
                name: name.into(),
                cluster: Some(KubeconfigCluster {
                    server: Some(server.into()),
                    certificate_authority_data: Some(STANDARD.encode(&self.ca_cert)),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            auth_infos: vec![NamedAuthInfo {
                name: identity.user().into(),
                auth_info: Some(AuthInfo {
                    client_certificate_data: Some(STANDARD.encode(&client.cert)),
                    client_key_data: Some(STANDARD.encode(client.key.expose_secret()).into()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            contexts: vec![NamedContext {
                name: name.into(),
                context: Some(Context {
                    cluster: name.into(),
                    user: Some(identity.user().into()),
                    namespace: Some("default".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            current_context: Some(name.into()),
            ..Default::default()
        };
        let yaml = serde_yaml::to_string(&file).map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
        Kubeconfig::from_yaml(yaml)
    }
}

fn name(common_name: &str, organisations: &[&str]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    for organisation in organisations {
        name.push(DnType::OrganizationName, *organisation);
    }
    name
}

/// A fresh key and its certificate signed by the session's CA.
fn sign(params: &CertificateParams, issuer: &Issuer<'_, KeyPair>) -> Result<KeyedCert, ClusterError> {
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?.pem();
    Ok(KeyedCert {
        cert,
        key: key.serialize_pem().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::{
        extensions::GeneralName,
        pem::parse_x509_pem,
        prelude::{FromDer, X509Certificate},
    };

    fn addresses() -> ApiAddresses {
        ApiAddresses {
            ips: vec!["10.96.12.34".parse().unwrap(), "127.0.0.1".parse().unwrap()],
            dns_names: vec!["api.ckad-0123456789.svc".into(), "localhost".into()],
        }
    }

    /// Parses a PEM certificate and hands it to `check`.
    fn with_cert<T>(pem: &str, check: impl FnOnce(&X509Certificate<'_>) -> T) -> T {
        let (_, pem) = parse_x509_pem(pem.as_bytes()).unwrap();
        let (_, cert) = X509Certificate::from_der(&pem.contents).unwrap();
        check(&cert)
    }

    fn public_key_of(pem: &str) -> Vec<u8> {
        let (_, pem) = parse_x509_pem(pem.as_bytes()).unwrap();
        pem.contents
    }

    #[test]
    fn every_certificate_is_signed_by_the_sessions_own_ca_and_by_nothing_else() {
        let pki = Pki::generate(&addresses()).unwrap();
        let other = Pki::generate(&addresses()).unwrap();
        let ca_der = public_key_of(&pki.ca_cert);
        let other_der = public_key_of(&other.ca_cert);
        let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
        let (_, other_ca) = X509Certificate::from_der(&other_der).unwrap();
        assert!(ca.is_ca());
        ca.verify_signature(None).expect("the CA is self-signed");

        let leaves = std::iter::once(&pki.apiserver.cert)
            .chain(Identity::ALL.iter().map(|who| &pki.client(*who).cert));
        for leaf in leaves {
            with_cert(leaf, |cert| {
                assert!(!cert.is_ca());
                assert_eq!(cert.issuer(), ca.subject());
                cert.verify_signature(Some(ca.public_key()))
                    .expect("signed by the session's CA");
                assert!(
                    cert.verify_signature(Some(other_ca.public_key())).is_err(),
                    "another session's CA must not vouch for it"
                );
                assert!(cert.validity().is_valid());
            });
        }
    }

    #[test]
    fn the_serving_certificate_names_the_apis_addresses_and_serves_only() {
        let pki = Pki::generate(&addresses()).unwrap();
        with_cert(&pki.apiserver.cert, |cert| {
            let sans = cert.subject_alternative_name().unwrap().unwrap();
            let mut ips = Vec::new();
            let mut dns = Vec::new();
            for name in &sans.value.general_names {
                match name {
                    GeneralName::IPAddress(bytes) => ips.push(bytes.to_vec()),
                    GeneralName::DNSName(name) => dns.push(name.to_string()),
                    other => panic!("unexpected name {other:?}"),
                }
            }
            assert_eq!(ips, [vec![10, 96, 12, 34], vec![127, 0, 0, 1]]);
            assert_eq!(dns, ["api.ckad-0123456789.svc", "localhost"]);
            let usage = cert.extended_key_usage().unwrap().unwrap().value;
            assert!(usage.server_auth && !usage.client_auth);
        });
    }

    #[test]
    fn administrators_are_in_system_masters_and_the_components_are_not() {
        let pki = Pki::generate(&addresses()).unwrap();
        for identity in Identity::ALL {
            with_cert(&pki.client(identity).cert, |cert| {
                let common_name: Vec<_> = cert
                    .subject()
                    .iter_common_name()
                    .map(|n| n.as_str().unwrap().to_owned())
                    .collect();
                let groups: Vec<_> = cert
                    .subject()
                    .iter_organization()
                    .map(|n| n.as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(common_name, [identity.user()]);
                let expected: &[&str] = match identity {
                    Identity::Platform | Identity::Learner | Identity::Kwok => &["system:masters"],
                    Identity::ControllerManager | Identity::Scheduler => &[],
                };
                assert_eq!(groups, expected, "{identity:?}");
                let usage = cert.extended_key_usage().unwrap().unwrap().value;
                assert!(usage.client_auth && !usage.server_auth, "{identity:?}");
            });
        }
    }

    #[test]
    fn a_kubeconfig_carries_the_ca_and_the_identitys_own_key() {
        let pki = Pki::generate(&addresses()).unwrap();
        let kubeconfig = pki
            .kubeconfig(Identity::Learner, "https://10.96.12.34:443")
            .unwrap();
        assert_eq!(kubeconfig.server().as_deref(), Some("https://10.96.12.34:443"));
        let file = KubeconfigFile::from_yaml(kubeconfig.yaml()).unwrap();
        let cluster = file.clusters[0].cluster.as_ref().unwrap();
        let ca = STANDARD
            .decode(cluster.certificate_authority_data.as_ref().unwrap())
            .unwrap();
        assert_eq!(ca, pki.ca_cert.as_bytes());
        let user = file.auth_infos[0].auth_info.as_ref().unwrap();
        let key = STANDARD
            .decode(user.client_key_data.as_ref().unwrap().expose_secret())
            .unwrap();
        assert_eq!(key, pki.client(Identity::Learner).key.expose_secret().as_bytes());
        assert_ne!(key, pki.client(Identity::Platform).key.expose_secret().as_bytes());
    }
}
