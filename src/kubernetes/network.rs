//! NetworkPolicies that mirror the compose networks, and the Ingress in front of nginx.
//! Builds values only; which services share a network is the stack's decision, not this module's.

use super::*;
use crate::stack::{DEFAULT_NETWORK, SSRF_NETWORK};

impl<'a> Model<'a> {
    /// Networks a service's pods belong to. The middleware shape's services on compose's one network are `data`;
    /// ssrf_proxy's way out there (`default` beside `ssrf_proxy_network`) is `backend`.
    pub(super) fn networks_of<'s>(&self, svc: &'s Service) -> Vec<&'s str> {
        if svc.networks.is_empty() {
            vec!["data"]
        } else {
            svc.networks.iter().map(|n| if n == DEFAULT_NETWORK { "backend" } else { n.as_str() }).collect()
        }
    }

    pub(super) fn networks_in_use(&self) -> BTreeSet<&'a str> {
        self.input.stack.services.values().flat_map(|s| self.networks_of(s)).collect()
    }

    /// Default deny, then one policy per network: `data` and `ssrf_proxy_network` accept their own members,
    /// `backend` its members and `frontend` members, `frontend` (nginx) anyone. Pods only on internal networks
    /// (compose `internal: true`) may only talk within the namespace and to cluster DNS; pods only on
    /// `ssrf_proxy_network` (the sandbox) only to that network's members (ssrf_proxy) and cluster DNS.
    pub(super) fn network_policies(&self) -> Vec<Value> {
        let policy = |name: &str, selector: Value, spec: Value| {
            let mut spec_map = Map::new();
            spec_map.insert("podSelector".into(), selector);
            if let Value::Object(rest) = spec {
                spec_map.extend(rest);
            }
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": self.metadata(name, self.common_labels(None)),
                "spec": spec_map,
            })
        };
        let member = |network: &str| json!({ "matchLabels": { network_label(network): "true" } });
        let mut out = vec![policy("default-deny-ingress", json!({}), json!({ "policyTypes": ["Ingress"] }))];
        let in_use = self.networks_in_use();
        for network in ["frontend", "backend", "data", SSRF_NETWORK] {
            if !in_use.contains(network) {
                continue;
            }
            let ingress = match network {
                "frontend" => json!([{}]),
                "backend" => {
                    json!([{ "from": [{ "podSelector": member("backend") }, { "podSelector": member("frontend") }] }])
                }
                _ => json!([{ "from": [{ "podSelector": member(network) }] }]),
            };
            out.push(policy(
                &format!("network-{}", network.replace('_', "-")),
                member(network),
                json!({ "policyTypes": ["Ingress"], "ingress": ingress }),
            ));
        }
        if self.input.stack.services.values().any(|s| self.internal_only(s)) {
            out.push(policy(
                "internal-egress",
                json!({ "matchLabels": { INTERNAL_LABEL: "true" } }),
                json!({
                    "policyTypes": ["Egress"],
                    "egress": [
                        { "to": [{ "podSelector": {} }] },
                        {
                            "to": [{ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } } }],
                            "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }],
                        },
                    ],
                }),
            ));
        }
        if self.input.stack.services.values().any(|s| self.ssrf_only(s)) {
            out.push(policy(
                "ssrf-egress",
                json!({ "matchLabels": { SSRF_ONLY_LABEL: "true" } }),
                json!({
                    "policyTypes": ["Egress"],
                    "egress": [
                        { "to": [{ "podSelector": member(SSRF_NETWORK) }] },
                        {
                            "to": [{ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } } }],
                            "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }],
                        },
                    ],
                }),
            ));
        }
        out
    }

    /// Only on internal networks (compose `data`, `internal: true`), and not only on `ssrf_proxy_network` (see
    /// [`Self::ssrf_only`]): no egress beyond the namespace.
    pub(super) fn internal_only(&self, svc: &Service) -> bool {
        let internal: BTreeSet<&str> =
            crate::stack::FULL_NETWORKS.iter().filter(|(_, internal)| *internal).map(|(n, _)| *n).collect();
        !self.ssrf_only(svc) && self.networks_of(svc).iter().all(|n| internal.contains(n))
    }

    /// Only on `ssrf_proxy_network` (the sandbox): egress to that network's members only.
    pub(super) fn ssrf_only(&self, svc: &Service) -> bool {
        self.networks_of(svc) == [SSRF_NETWORK]
    }

    pub(super) fn ingress(&self) -> Option<Value> {
        let nginx = self.input.stack.services.get("nginx")?;
        let port = if self.ports_of(nginx).contains(&443) { 443 } else { 80 };
        let domain = &self.input.settings.domain;
        let mut annotations = Map::new();
        if port == 443 {
            annotations.insert("nginx.ingress.kubernetes.io/backend-protocol".into(), json!("HTTPS"));
        }
        let mut metadata = self.metadata(&self.namespace, self.common_labels(Some("nginx")));
        metadata["annotations"] = Value::Object(annotations);
        Some(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": metadata,
            "spec": {
                "tls": [{ "hosts": [domain], "secretName": self.tls_secret() }],
                "rules": [{
                    "host": domain,
                    "http": { "paths": [{
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": { "service": { "name": "nginx", "port": { "number": port } } },
                    }] },
                }],
            },
        }))
    }

    pub(super) fn tls_secret(&self) -> String {
        format!("{}-tls", self.namespace)
    }
}

pub(super) const INTERNAL_LABEL: &str = "ragctl/internal-only";
pub(super) const SSRF_ONLY_LABEL: &str = "ragctl/ssrf-only";

pub(super) fn network_label(network: &str) -> String {
    format!("ragctl/network-{network}")
}
